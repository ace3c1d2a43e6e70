"""A HOME or store that cannot be used (issue 14): one sentence each, never a traceback, and backups that survive
a store emptied by a slip.

Running as root, `chmod` stops nothing, so an unwritable HOME is simulated by fault injection: every os call that
would write under HOME fails with EROFS (what a read-only mount gives), as does each single step of a write.
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from slmtui import store_backup
from slmtui.cli import main
from slmtui.cli.doctor import store_problems
from slmtui.store import Store, StoreError
from slmtui.store_backup import GENERATIONS, backup_path, backups
from tests.conftest import Cli


def _under(path: Any, root: Path) -> bool:
    try:
        return Path(os.fsdecode(path)).resolve().is_relative_to(root.resolve())
    except (TypeError, ValueError):
        return False


def make_read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Every write under `root` fails as on a read-only mount; reads work."""
    def refuse(path: Any) -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kw: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and _under(path, root):
            refuse(path)
        return real_open(path, flags, *args, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    for name in ("link", "replace", "rename"):
        real: Callable[..., Any] = getattr(os, name)
        monkeypatch.setattr(os, name, lambda src, dst, *a, _real=real, **k: refuse(dst) if _under(dst, root)
                            else _real(src, dst, *a, **k))
    real_mkdir = os.mkdir
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: refuse(path) if _under(path, root) and not
                        os.path.isdir(path) else real_mkdir(path, *a, **k))


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code: int, err: str, *words: str) -> None:
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("slmtui: "), err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("step", ["temp file", "backup link", "rename"])
def test_a_store_write_that_fails_at_any_step_is_one_sentence_and_leaves_no_temp_file(
        step: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: `PermissionError` while making `.bak`, with the `.tmp` file left behind."""
    store = Store(home)
    store.add_entry("kept")
    before = store.path.read_bytes()
    target = {"temp file": "open", "backup link": "link", "rename": "replace"}[step]
    real = getattr(os, target)

    def fail(*args: Any, **kw: Any) -> Any:
        if target == "open" and (not args[1] & os.O_CREAT or str(args[0]).endswith(".lock")):
            return real(*args, **kw)
        raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))

    monkeypatch.setattr(os, target, fail)
    with pytest.raises(StoreError, match=r"could not be written \(Permission denied\), so nothing was changed; "
                                         r"make .* writable or set SLMTUI_HOME"):
        store.add_entry("lost")
    monkeypatch.undo()
    assert store.path.read_bytes() == before
    assert not [p.name for p in home.iterdir() if p.name.endswith((".tmp", ".bak")) and p.name.startswith(".")]


def test_a_read_only_home_reads_and_refuses_writes_in_one_sentence(
        home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    Store(home).add_entry("written before the disk went read-only")
    (home / "slmtui.json.lock").unlink()
    make_read_only(monkeypatch, home)
    code, out, err = run_cli(capsys, "journal", "list")
    assert "written before" in out and "Traceback" not in err, (code, out, err)
    code, out, err = run_cli(capsys, "journal", "add", "new")
    assert_one_line(code, err, "Read-only file system", "set SLMTUI_HOME to a writable folder")


def test_doctor_reports_a_read_only_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: `slmtui doctor` reported nothing."""
    home.mkdir(parents=True)
    assert store_problems() == []
    make_read_only(monkeypatch, home)
    [problem] = store_problems()
    assert problem["severity"] == "error" and "is not writable (Read-only file system)" in problem["problem"]


def test_a_home_that_cannot_be_created_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A read-only `$HOME` where the platform's data folder would be created."""
    home = tmp_path / "ro" / "slmtui"
    monkeypatch.setenv("SLMTUI_HOME", str(home))
    make_read_only(monkeypatch, tmp_path / "ro")
    code, _, err = run_cli(capsys, "journal", "list")
    assert_one_line(code, err, "cannot create its folder", "Read-only file system", "set SLMTUI_HOME")
    [problem] = store_problems()
    assert "cannot create its folder" in problem["problem"]


STORE_CASES = {
    "the store is a folder": ("folder", "cannot be read (it is a folder, not a file)"),
    "a table that is not an object": ('{"meta": "x"}', "its table 'meta' is a JSON str, not an object"),
    "a record that is not an object": ('{"journal": {"1": "x"}}', "its table 'journal' holds '1'"),
    "a list": ("[1, 2]", "a JSON list, not an object"),
    "SLMTUI_HOME is a file": ("home", "is a file, not a folder"),
}


@pytest.mark.parametrize("case", list(STORE_CASES))
@pytest.mark.parametrize("command", [("journal", "list"), ("journal", "add", "x"), ("checklist",)])
def test_a_store_or_home_that_cannot_be_used_is_one_sentence(
        case: str, command: tuple[str, ...], home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was: `IsADirectoryError`, `AttributeError`, `FileExistsError` tracebacks."""
    content, words = STORE_CASES[case]
    if content == "home":
        home.parent.mkdir(parents=True, exist_ok=True)
        home.write_text("not a folder")
    else:
        home.mkdir(parents=True)
        if content == "folder":
            (home / "slmtui.json").mkdir()
        else:
            (home / "slmtui.json").write_text(content)
    code, _, err = run_cli(capsys, *command)
    assert_one_line(code, err, words)
    assert store_problems()[0]["severity"] == "error"


def test_a_record_with_a_field_of_the_wrong_type_is_one_sentence(home: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Was: `ValueError: could not convert string to float` from `journal list`."""
    home.mkdir(parents=True)
    (home / "slmtui.json").write_text('{"journal": {"1": {"text": "x", "created": "yesterday"}}}')
    code, _, err = run_cli(capsys, "journal", "list")
    assert_one_line(code, err, "holds journal entry 1 of the wrong shape", "slmtui doctor --restore-store")


def _add(store: Store, n: int) -> None:
    for i in range(n):
        store.add_entry(f"entry {i}")


def test_an_emptied_store_never_pushes_the_last_full_backup_out(home: Path) -> None:
    """Was: one write after the store was overwritten with `{}` replaced `.bak` with the empty store."""
    store = Store(home)
    _add(store, 4)
    store.set_setting("theme", "dark")  # .bak now holds the four entries, as in the report
    store.path.write_text("{}")
    for i in range(GENERATIONS * 3):
        store.set_setting("theme", f"t{i}")
    assert [b.records for b in backups(store.path)] == [1, 1, 4]
    kept = json.loads(backup_path(store.path, GENERATIONS).read_text())
    assert [d["text"] for d in kept["journal"].values()] == [f"entry {i}" for i in range(4)]


def test_backups_rotate_through_the_generations(home: Path) -> None:
    store = Store(home)
    _add(store, GENERATIONS + 2)
    assert [b.records for b in backups(store.path)] == [GENERATIONS + 1, GENERATIONS, GENERATIONS - 1]


def test_a_write_parses_each_former_store_file_once(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was: every store write parsed the two oldest backups again to compare their records."""
    counted: list[int] = []
    real = store_backup.count_records

    def counting(data: Any) -> int:
        counted.append(1)
        return real(data)

    monkeypatch.setattr(store_backup, "count_records", counting)
    store = Store(home)
    _add(store, 20)
    assert len(counted) <= 20  # one parse per backup file made, however often it moved
    assert [b.records for b in backups(store.path)] == [19, 18, 17]


def test_doctor_notices_an_emptied_store_and_restores_it(home: Path, cli: Cli) -> None:
    """The reported slip end to end: `{}` over the store, `journal list`, then the doctor's restore."""
    _add(Store(home), 4)
    Store(home).set_setting("theme", "dark")
    (home / "slmtui.json").write_text("{}")
    assert cli("journal", "list", check=True).stdout.startswith("The journal is empty")
    cli("journal", "add", "after the slip", check=True)
    [warning] = store_problems()
    assert warning["severity"] == "warning" and "holds 1 record (" in warning["problem"]
    assert "slmtui doctor --restore-store" in warning["fix"]
    proc = cli("doctor", "--restore-store", check=True)
    assert "Restored backup" in proc.stdout and "kept as" in proc.stdout
    texts = [e["text"] for e in cli.json("journal", "list", "--json")["entries"]]
    assert texts == [f"entry {i}" for i in range(4)]
    aside = [p for p in home.iterdir() if ".replaced-" in p.name]
    assert len(aside) == 1 and "after the slip" in aside[0].read_text()
    assert store_problems() == []


def test_a_restore_of_a_backup_that_does_not_exist_is_one_sentence(home: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _add(Store(home), 2)
    code, _, err = run_cli(capsys, "doctor", "--restore-store", "3")
    assert_one_line(code, err, "There is no backup 3")


def test_a_store_that_is_a_folder_can_be_restored_from_a_backup(home: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(home)
    _add(store, 2)
    store.path.unlink()
    store.path.mkdir()
    code, out, _ = run_cli(capsys, "doctor", "--restore-store")
    assert code == 0 and "Restored backup 1 (1 record)" in out, out
    assert [e.text for e in store.entries()] == ["entry 0"]
    assert [p.is_dir() for p in home.iterdir() if ".replaced-" in p.name] == [True]
