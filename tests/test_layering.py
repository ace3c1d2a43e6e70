"""The layering rules of docs/architecture.md that import-linter cannot see, checked in fresh interpreters."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, cli_env

ML_STACK = ("torch", "transformers", "peft", "bitsandbytes", "datasets", "accelerate", "tokenizers")


def _modules_after(code: str, home: Path) -> set[str]:
    probe = f"{code}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], env=cli_env(home), capture_output=True, text=True,
                         cwd=REPO, check=True).stdout
    return set(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import slmtui.app",
        "import screens.checklist, slmtui.checklist",
        "import screens.gpus, screens.new_run, slmtui.new_run, slmtui.data_service, slmtui.launch\n"
        "from slmtui.fit import resolve_shape, fit_table\nfit_table(24.0, 1024)\ntry:\n    resolve_shape('a/b')\n"
        "except Exception:\n    pass",
        "import slmtui.cli as c; c.build_parser()",
        "import slmtui.cli as c\ntry:\n    c.main(['--help'])\nexcept SystemExit:\n    pass",
    ],
)
def test_the_console_and_cli_never_load_the_ml_stack(code: str, home: Path) -> None:
    loaded = _modules_after(code, home)
    assert not {m for m in loaded if m.split(".")[0] in ML_STACK}


def test_python_m_engine_is_this_project(home: Path) -> None:
    code = "import engine, engine.__main__ as m; print(engine.__file__); print(m.__file__)"
    out = subprocess.run([sys.executable, "-c", code], env=cli_env(home), capture_output=True, text=True,
                         cwd="/", check=True).stdout.split()
    assert all(Path(p).resolve().is_relative_to(REPO) for p in out)
    help_out = subprocess.run([sys.executable, "-m", "engine", "--help"], env=cli_env(home), capture_output=True,
                              text=True, cwd="/", check=True).stdout
    assert "usage: python -m engine" in help_out


def _imported_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_screens_never_spawn_processes_or_touch_the_database() -> None:
    """import-linter skips the standard library; screens must still never use subprocess."""
    offenders = {
        str(p.relative_to(REPO)): sorted(_imported_names(p) & {"subprocess", "tinydb", "pynvml", *ML_STACK})
        for p in (REPO / "screens").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_gpu_module_imports_pynvml() -> None:
    users = [str(p.relative_to(REPO)) for p in (REPO / "slmtui").rglob("*.py") if "pynvml" in _imported_names(p)]
    assert users in ([], ["slmtui/gpu.py"])
