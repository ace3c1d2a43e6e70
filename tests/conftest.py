"""Fixtures shared by every suite: an isolated HOME, the CLI as a subprocess, a tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest

REPO = Path(__file__).resolve().parent.parent

# No test ever reaches a hub, and libraries stay quiet.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP spin-waits make two threads
# 20x slower than one. Set before torch is first imported, here and in every engine the tests start.
os.environ.setdefault("OMP_NUM_THREADS", "1")


class ThreadEnv(TypedDict):
    OMP_NUM_THREADS: str


#: Extra environment for a CLI or engine subprocess: one OpenMP thread even where the caller's environment says more.
THREADS: ThreadEnv = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own `$SLMTUI_HOME` (and runs folder inside it)."""
    path = tmp_path / "home"
    monkeypatch.setenv("SLMTUI_HOME", str(path))
    monkeypatch.delenv("SLMTUI_RUNS", raising=False)
    yield path


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["SLMTUI_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


class Cli:
    """Runs `python -m slmtui ...` as a real subprocess against the test's HOME."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def __call__(self, *args: str, input: str | None = None, timeout: float = 300, check: bool = False,
                 **env: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "slmtui", *args],
            env=cli_env(self.home, **env),
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            cwd=REPO,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"slmtui {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc

    def json(self, *args: str, **kw: Any) -> Any:
        proc = self(*args, check=True, **kw)
        return json.loads(proc.stdout)


@pytest.fixture
def cli(home: Path) -> Cli:
    return Cli(home)


TINY_CORPUS = [
    f"Ticket {i}: my order {1000 + i} has not arrived and I need it by Friday. Category: shipping. "
    f"Reply: Sorry about the delay, we are checking order {1000 + i} with the carrier now."
    for i in range(300)
] + [
    f"Ticket {i}: I was charged twice for invoice {5000 + i}. Category: billing. "
    "Reply: We have refunded the duplicate charge; it shows within five days."
    for i in range(300)
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with a BPE tokenizer trained on the spot, saved with `save_pretrained`."""
    from engine.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), TINY_CORPUS, vocab_size=512)
