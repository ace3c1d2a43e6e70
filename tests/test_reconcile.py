"""The store's run index and derived journal entries follow the run folders, idempotently."""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.protocol import EventWriter, write_json_atomic
from slmtui.reconcile import journal_items, reconcile
from slmtui.store import Store
from tests.conftest import Cli


def _fake_run(runs: Path, run_id: str) -> tuple[Path, EventWriter]:
    run_dir = runs / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "x"\n')
    write_json_atomic(run_dir / "summary.json", {"run": run_id, "status": "completed", "step": 3, "started": time.time(),
                                                 "ended": time.time(), "latest": {"loss": 1.5}, "best": {"val_loss": 1.4}})
    return run_dir, EventWriter(run_dir / "events.jsonl", run=run_id)


def test_runs_and_their_events_become_index_and_entries(home: Path) -> None:
    runs = home / "runs"
    run_dir, writer = _fake_run(runs, "20261126-070000-demo")
    writer.emit("started", spec={"model": {"name": "tiny"}, "method": {"kind": "lora"}, "data": {"path": "t.jsonl"}},
                env={"torch": "2.13"}, precision="fp32", device="cpu",
                data={"fingerprint": "abcdef0123456789", "description": ["Scrubbed 3 e-mail addresses."]})
    writer.emit("metrics", step=1, loss=2.0)
    writer.emit("oom", step=2, batch_shape=[8, 1024], mem_at_failure_gib=70.5, action="shrink",
                post_mortem=[{"change": "gradient checkpointing", "saves_gib": 12.0}])
    store = Store(home)
    result = reconcile(store, runs)
    assert (result.runs, result.new_entries) == (1, 2)
    (record,) = store.runs()
    assert (record.model, record.method, record.status, record.last_seq) == ("tiny", "lora", "completed", 2)
    assert record.fingerprint["data"] == "abcdef0123456789"
    kinds = {e.kind: e for e in store.entries()}
    assert "Scrubbed 3 e-mail addresses." in kinds["data"].text
    assert kinds["oom"].step == 2 and "saves about 12.0 GiB" in kinds["oom"].text
    # again: nothing new
    assert reconcile(store, runs).new_entries == 0 and len(store.entries()) == 2
    # a torn line is not consumed; once complete it is
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('{"v":1,"type":"oom","seq":3,"t":1,"run":"20261126-070000-demo","step":5,"acti')
    assert reconcile(store, runs).new_entries == 0
    with open(run_dir / "events.jsonl", "a") as fh:
        fh.write('on":"stop"}\n')
    assert reconcile(store, runs).new_entries == 1
    assert store.runs()[0].last_seq == 3


def test_people_entries_are_kept_and_unknown_events_ignored(home: Path) -> None:
    assert journal_items({"type": "metrics", "seq": 1, "run": "r"}) == []
    assert journal_items({"type": "future-thing", "seq": 1, "run": "r"}) == []
    store = Store(home)
    store.add_entry("mine")
    runs = home / "runs"
    _fake_run(runs, "20261126-070001-b")
    reconcile(store, runs)
    assert [e.text for e in store.entries()] == ["mine"]


def test_runs_cli_reconciles(home: Path, cli: Cli) -> None:
    runs = home / "runs"
    _, writer = _fake_run(runs, "20261126-070002-c")
    writer.emit("started", spec={"data": {"path": "d.jsonl"}}, data={"description": ["Split 90/5/5."]})
    out = cli.json("runs", "--json")
    assert [r["id"] for r in out["runs"]] == ["20261126-070002-c"]
    entries = cli.json("journal", "list", "--json")["entries"]
    assert [e["kind"] for e in entries] == ["data"] and "Split 90/5/5." in entries[0]["text"]
    assert json.loads((home / "slmtui.json").read_text())["runs"]
