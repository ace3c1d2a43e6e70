"""The store: journal, settings, run index; atomic writes under concurrency and SIGKILL."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import signal
import stat
import time
from pathlib import Path

import pytest

from slmtui.store import JOURNAL_KINDS, RunRecord, Store, StoreError


def test_journal_round_trip(home: Path) -> None:
    store = Store(home)
    a = store.add_entry("tried rank 8", kind="hyperparams", run="20261126-101500-demo", step=40)
    b = store.add_entry("loss plateaus after warm-up", kind="aha")
    assert [e.id for e in store.entries()] == [a.id, b.id]
    assert store.entries(kind="aha") == [b]
    assert store.entries(text="RANK") == [a]
    assert store.entries(run="20261126-101500-demo") == [a]
    edited = store.update_entry(a.id, text="tried rank 8 and 16")
    assert edited.text == "tried rank 8 and 16" and edited.updated is not None
    assert edited.run == a.run and edited.step == a.step  # untouched fields stay
    assert store.update_entry(a.id, step=None).step is None
    store.delete_entry(b.id)
    assert [e.id for e in store.entries()] == [a.id]
    assert Store(home).get_entry(a.id) == store.get_entry(a.id)


def test_ids_are_never_reused(home: Path) -> None:
    store = Store(home)
    first = store.add_entry("one")
    store.delete_entry(first.id)
    assert store.add_entry("two").id == first.id + 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": "  "}, "needs some text"),
        ({"text": "x", "kind": "rumour"}, "Unknown journal kind 'rumour'"),
        ({"text": "x", "step": -1}, "step must be 0 or more"),
    ],
)
def test_bad_entries_get_one_sentence(home: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Store(home).add_entry(**kwargs)


def test_missing_entries_are_named(home: Path) -> None:
    with pytest.raises(StoreError, match="no journal entry 42"):
        Store(home).delete_entry(42)


def test_every_kind_is_accepted(home: Path) -> None:
    store = Store(home)
    for kind in JOURNAL_KINDS:
        store.add_entry(f"a {kind}", kind=kind)
    assert sorted(e.kind for e in store.entries()) == sorted(JOURNAL_KINDS)


def test_derived_entries_are_idempotent(home: Path) -> None:
    store = Store(home)
    items = [{"kind": "data", "text": "scrubbed 3 e-mails", "run": "r", "source": "r:0"}]
    assert store.add_entries(items) == 1
    assert store.add_entries(items) == 0
    assert store.add_entry("again", kind="data", source="r:0").text == "scrubbed 3 e-mails"
    assert len(store.entries()) == 1


def test_settings_checklist_shortlist(home: Path) -> None:
    store = Store(home)
    assert store.setting("theme", "dark") == "dark"
    store.set_setting("theme", "light")
    store.set_setting("keymap", {"quit": "q"})
    assert Store(home).setting("theme") == "light" and store.setting("keymap") == {"quit": "q"}
    store.save_checklist({"drivers": ["domain knowledge"], "verdict": "go"})
    assert store.checklist()["verdict"] == "go"
    store.save_shortlist([{"model": "Qwen/Qwen2.5-0.5B"}])
    assert store.shortlist() == [{"model": "Qwen/Qwen2.5-0.5B"}]


def test_run_index_keeps_what_people_wrote(home: Path) -> None:
    store = Store(home)
    run = RunRecord(id="20261126-101500-demo", dir="/r", status="running", latest={"loss": 2.0})
    store.upsert_runs([run])
    store.set_run_meta(run.id, tags=["baseline"], archived=True)
    store.upsert_runs([RunRecord(id=run.id, dir="/r", status="completed", latest={"loss": 1.0})])
    (got,) = store.runs()
    assert (got.status, got.latest, got.tags, got.archived) == ("completed", {"loss": 1.0}, ("baseline",), True)
    with pytest.raises(StoreError, match="no run nope"):
        store.set_run_meta("nope", archived=True)


def test_change_token_moves_on_every_write(home: Path) -> None:
    store = Store(home)
    before = store.change_token()
    Store(home).add_entry("from another process, as far as the store knows")
    assert store.change_token() != before


def test_files_are_owner_only(home: Path) -> None:
    store = Store(home)
    store.add_entry("private")
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_an_unreadable_store_is_never_replaced(home: Path) -> None:
    store = Store(home)
    store.add_entry("precious")
    store.add_entry("also precious")
    store.path.write_text('{"journal": {"1": {"text": "prec')  # torn by something outside slmtui
    broken = store.path.read_bytes()
    with pytest.raises(StoreError) as info:
        store.add_entry("new")
    message = str(info.value)
    assert str(store.path) in message and "slmtui.json.bak" in message
    assert store.path.read_bytes() == broken
    backup = json.loads((home / "slmtui.json.bak").read_text())
    assert [d["text"] for d in backup["journal"].values()] == ["precious"]


def test_a_store_from_a_newer_schema_is_refused(home: Path) -> None:
    store = Store(home)
    store.add_entry("x")
    data = json.loads(store.path.read_text())
    data["meta"]["1"]["schema"] = 99
    store.path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match="newer slmtui"):
        store.entries()


def _add_many(home: str, tag: str, count: int) -> None:
    store = Store(Path(home))
    for i in range(count):
        store.add_entry(f"{tag}-{i}")


def test_two_processes_adding_at_once_lose_nothing(home: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(str(home), tag, 500)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    texts = {e.text for e in Store(home).entries()}
    assert texts == {f"{tag}-{i}" for tag in ("a", "b") for i in range(500)}
    assert len(Store(home).entries()) == 1000


def _writer(home: str, ack_fd: int, start: int) -> None:
    store = Store(Path(home))
    i = start
    while True:
        entry = store.add_entry(f"entry-{i}")
        os.write(ack_fd, f"{entry.text}\n".encode())  # acknowledged: add_entry returned
        i += 1


def test_sigkill_during_writes_never_breaks_the_store(home: Path) -> None:
    """200 SIGKILLs at random moments: the store always loads and keeps every acknowledged entry."""
    rng = random.Random(1234)
    acknowledged: set[str] = set()
    Store(home).add_entry("seed")
    next_index = 0
    for _ in range(200):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child writes until it is killed
            os.close(read_fd)
            try:
                _writer(str(home), write_fd, next_index)
            finally:
                os._exit(1)
        os.close(write_fd)
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        with os.fdopen(read_fd, "rb") as fh:
            acked = [line for line in fh.read().decode().splitlines() if line]
        acknowledged.update(acked)
        next_index += 10_000
        texts = {e.text for e in Store(home).entries()}  # loads every time
        assert acknowledged <= texts
    assert len(acknowledged) > 0
