"""Security: no token ever written, owner-only files, no remote code, no pickles, no telemetry.

One real CLI session (a tiny training run, a failing run, data checks, a model export, two failing evals, the
journal and its export) runs once
with a fake hub token planted in the environment; the tests then search everything it wrote.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

import pytest

from engine.spec import RunSpec
from tests.conftest import Cli
from tests.fault_helpers import events_of, wait_event, write_spec

pytestmark = pytest.mark.slow

FAKE_TOKEN = "hf_FAKEtoken1234567890abcdef"
#: Distinctive pieces of the token: a leak that truncates or splits it is still found.
TOKEN_PIECES = (FAKE_TOKEN, "FAKEtoken1234", "1234567890abcdef")


class TokenEnv(TypedDict):
    HF_TOKEN: str
    HUGGING_FACE_HUB_TOKEN: str
    OMP_NUM_THREADS: str


TOKEN_ENV: TokenEnv = {"HF_TOKEN": FAKE_TOKEN, "HUGGING_FACE_HUB_TOKEN": FAKE_TOKEN, "OMP_NUM_THREADS": "1"}


@dataclass
class Session:
    home: Path
    work: Path
    outputs: list[str]
    good_run: Path
    hub_run: Path
    missing_model: str


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Session:
    """Everything a user does in one sitting, with a fake token in the environment of every process."""
    home = tmp_path_factory.mktemp("secure") / "home"
    work = home.parent / "work"
    cli = Cli(home)
    outputs: list[str] = []

    def run(*args: str) -> str:
        proc = cli(*args, **TOKEN_ENV)
        outputs.extend((proc.stdout, proc.stderr))
        return proc.stdout

    good = write_spec(work, tiny_model_dir, name="secure", max_steps=4, save_every=2)
    hub = write_spec(work, "nobody-here/no-such-model-xyz", name="hub")
    missing = write_spec(work, work / "no-model-folder", name="missing")
    good_id = run("train", str(good), "--detach").strip().splitlines()[-1]
    hub_id = run("train", str(hub), "--detach").strip().splitlines()[-1]
    run("train", str(missing))
    run("data", "check", str(work / "rows.jsonl"), "--tokenizer", str(tiny_model_dir), "--json")
    run("data", "check", str(work / "nothing.jsonl"))
    good_run, hub_run = home / "runs" / good_id, home / "runs" / hub_id
    wait_event(good_run, lambda e: e["type"] == "finished")
    wait_event(hub_run, lambda e: e["type"] == "finished")
    run("export", good_id, str(work / "exported"), "--json")
    run("eval", "--model", str(work / "no-model-folder"), "--data", str(work / "rows.jsonl"), "--subset", "4")
    run("eval", "--model", "nobody-here/no-such-model-xyz", "--data", str(work / "rows.jsonl"), "--subset", "4")
    run("journal", "add", "the secure run went fine", "--run", good_id, "--kind", "aha")
    run("journal", "export", "--md", str(work / "journal.md"))
    run("runs", "--json")
    return Session(home, work, outputs, good_run, hub_run, str(work / "no-model-folder"))


def test_the_session_did_real_work(session: Session) -> None:
    assert events_of(session.good_run)[-1]["status"] == "completed"
    assert (session.good_run / "checkpoints").is_dir() and (session.good_run / "adapter").is_dir()
    assert (session.work / "journal.md").read_text().count("the secure run went fine") == 1
    assert (session.home / "slmtui.json").is_file()
    assert any((session.work / "exported").rglob("*.safetensors"))


def test_no_token_in_any_file_or_message(session: Session) -> None:
    searched = 0
    for root in (session.home, session.work):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                searched += 1
                for piece in TOKEN_PIECES:
                    assert piece.encode() not in data, f"{piece} found in {path}"
    for text in session.outputs:
        for piece in TOKEN_PIECES:
            assert piece not in text
    assert searched > 20  # spec, events, logs, summary, checkpoints, store, export, cache


def test_a_hub_id_that_does_not_exist_is_one_sentence(session: Session) -> None:
    finished = events_of(session.hub_run)[-1]
    message = finished["summary"]["message"]
    assert finished["status"] == "failed" and "nobody-here/no-such-model-xyz" in message
    assert "\n" not in message and "check the name" in message


def test_a_model_folder_that_does_not_exist_is_one_sentence(session: Session) -> None:
    errors = [text for text in session.outputs if session.missing_model in text]
    assert errors and all(len(text.strip().splitlines()) == 1 and "Traceback" not in text for text in errors)
    assert "is not a folder" in errors[0]
    assert any("--model" in text for text in errors)  # the eval says it too


def test_an_eval_of_a_missing_hub_model_is_one_sentence(session: Session) -> None:
    errors = [text for text in session.outputs if "nobody-here/no-such-model-xyz" in text and "slmtui:" in text]
    assert errors and all(len(text.strip().splitlines()) == 1 and "Traceback" not in text for text in errors)


def test_run_folders_and_the_store_are_owner_only(session: Session) -> None:
    checked = 0
    for path in [session.home, *session.home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_dir():
            assert mode == 0o700, f"{path} is {oct(mode)}"
        else:
            assert mode == 0o600, f"{path} is {oct(mode)}"
        checked += 1
    assert checked > 20


def test_no_tracker_runs_unless_report_to_names_it(session: Session) -> None:
    started = next(e for e in events_of(session.good_run) if e["type"] == "started")
    assert started["spec"]["train"]["report_to"] == []
    written = {p.name for p in session.good_run.iterdir()}
    assert not written & {"wandb", "mlruns", "tensorboard"}


def test_the_engine_env_disables_telemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.__main__ import private_process
    from slmtui.engine_proc import engine_env

    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    assert engine_env()["HF_HUB_DISABLE_TELEMETRY"] == "1"
    previous = os.umask(0o022)
    try:
        private_process()
        assert os.environ["HF_HUB_DISABLE_TELEMETRY"] == "1"
        assert os.umask(0o022) == 0o077
    finally:
        os.umask(previous)


def _spec(model_dir: Path, **model: object) -> RunSpec:
    spec = RunSpec(name="sec")
    spec.model.name = str(model_dir)
    spec.train.device = "cpu"
    for key, value in model.items():
        setattr(spec.model, key, value)
    return spec


def test_trust_remote_code_is_off_unless_the_spec_names_it(tiny_model_dir: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    from engine.modeling import load_for_training

    seen: list[tuple[str, object]] = []
    for cls in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM, transformers.AutoConfig):
        original = cls.from_pretrained

        def spy(*args: object, _original=original, _name=cls.__name__, **kwargs: object) -> object:
            seen.append((_name, kwargs.get("trust_remote_code", "absent")))
            return _original(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    load_for_training(_spec(tiny_model_dir))
    assert {name for name, _ in seen} >= {"AutoTokenizer", "AutoModelForCausalLM"}
    assert all(value is False for _, value in seen), seen
    seen.clear()
    load_for_training(_spec(tiny_model_dir, trust_remote_code=True))
    assert seen and all(value is True for _, value in seen)


def test_pickled_weights_are_refused_unless_the_spec_allows_them(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from engine.modeling import ModelError, load_for_training

    pickled = tmp_path / "pickled-model"
    shutil.copytree(tiny_model_dir, pickled)
    weights = load_file(pickled / "model.safetensors")
    (pickled / "model.safetensors").unlink()
    torch.save(weights, pickled / "pytorch_model.bin")
    with pytest.raises(ModelError) as refused:
        load_for_training(_spec(pickled))
    message = str(refused.value)
    assert "no safetensors weights" in message and "model.allow_pickle = true" in message
    assert "\n" not in message
    loaded = load_for_training(_spec(pickled, allow_pickle=True))
    assert loaded.params_total > 0


def test_the_console_shows_trust_remote_code_when_on() -> None:
    """The Monitor's figures say so when a run's spec turns remote code on; New run has the switch in view."""
    from dataclasses import replace

    from screens.widgets.run_panels import stats_text
    from slmtui.monitor_data import EMPTY_VIEW, RunView
    from slmtui.new_run import FIELDS_BY_PATH

    def view(trust: bool) -> RunView:
        started = {"precision": "fp32", "device": "cpu", "spec": {"model": {"name": "m", "trust_remote_code": trust}}}
        return replace(EMPTY_VIEW, run_id="20261126-083000-x", status="running", started=started)

    assert "trust_remote_code is ON" in str(stats_text(view(True)))
    assert "trust_remote_code" not in str(stats_text(view(False)))
    assert FIELDS_BY_PATH["model.trust_remote_code"].kind == "bool"
