"""The store's backups: several generations, rotated so that a store emptied by a slip never pushes out the last
good one, and the restore `slmtui doctor --restore-store` does.

`slmtui.json.bak` is the version before the latest write, `.bak.2` and `.bak.3` older ones; all are hard links to
former store files (no copies). On each write the generations shift by one, except that the oldest is kept
instead of the one before it when it holds more records: a store overwritten with `{}` and then written a few
times still has the full version among its backups.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: How many backup generations the store keeps.
GENERATIONS = 3
#: Tables that are caches rebuilt from elsewhere (the run index) or bookkeeping, not counted as records.
_NOT_RECORDS = ("meta", "runs")


@dataclass(frozen=True)
class Backup:
    """One backup generation: its number (1 is the newest), file, records (None if unreadable) and time."""

    generation: int
    path: Path
    records: int | None
    written: float


def backup_path(store: Path, generation: int) -> Path:
    """`slmtui.json.bak` for generation 1, `slmtui.json.bak.N` for the older ones."""
    suffix = ".bak" if generation == 1 else f".bak.{generation}"
    return store.with_name(store.name + suffix)


def count_records(data: Any) -> int:
    """Journal entries, evaluation results, settings, checklist and shortlist documents (not the run index)."""
    if not isinstance(data, dict):
        return 0
    return sum(len(docs) for name, docs in data.items() if name not in _NOT_RECORDS and isinstance(docs, dict))


#: Record counts of store files already read, by (device, inode, mtime, size): backups are hard links that
#: keep their inode through every rotation, so each former store file is parsed once, not on every write.
_counted: dict[tuple[int, int, int, int], int | None] = {}
_COUNTED_MAX = 64


def read_records(path: Path) -> int | None:
    """How many records the store file at `path` holds; None when it cannot be read as a store."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if key in _counted:
        return _counted[key]
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):
        return None
    records = count_records(data) if isinstance(data, dict) else None
    if len(_counted) >= _COUNTED_MAX:
        _counted.clear()
    _counted[key] = records
    return records


def backups(store: Path) -> list[Backup]:
    """The backups that exist, newest first."""
    found = []
    for generation in range(1, GENERATIONS + 1):
        path = backup_path(store, generation)
        try:
            written = path.stat().st_mtime
        except OSError:
            continue
        found.append(Backup(generation, path, read_records(path), written))
    return found


def rotate(store: Path) -> None:
    """Make the current store file the newest backup, shifting the older ones (call under the write lock).

    The oldest generation is dropped, unless it holds more records than the one before it: then that one goes
    instead, so the fullest old version survives any number of writes of a smaller store.
    """
    if not store.exists():
        return
    oldest, before = backup_path(store, GENERATIONS), backup_path(store, GENERATIONS - 1)
    keep_oldest = oldest.exists() and (read_records(oldest) or 0) > (read_records(before) or 0)
    start = GENERATIONS - 1 if keep_oldest else GENERATIONS
    for generation in range(start, 1, -1):  # N-1 -> N, ..., 1 -> 2
        older = backup_path(store, generation - 1)
        if older.exists():
            os.replace(older, backup_path(store, generation))
    link = store.with_name(f".{store.name}.{os.getpid()}.bak")
    with suppress(OSError):
        os.unlink(link)
    os.link(store, link)
    try:
        os.replace(link, backup_path(store, 1))
    except OSError:
        with suppress(OSError):
            os.unlink(link)
        raise


def shrunk_since(store: Path, records: int) -> Backup | None:
    """The backup with the most records when it holds more than the store's `records`, else None."""
    fuller = [b for b in backups(store) if b.records is not None and b.records > records]
    return max(fuller, key=lambda b: (b.records or 0, -b.generation)) if fuller else None


def restore(store: Path, generation: int) -> Path | None:
    """Put backup `generation` in place of the store (call under the write lock); returns where the store that was
    replaced now is (None when there was none). Raises `ValueError` with a sentence when the backup is unusable."""
    source = backup_path(store, generation)
    try:
        raw = source.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise ValueError(f"There is no backup {generation} ({source.name}); `slmtui doctor` lists the backups.") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"The backup {source} cannot be read ({exc}); choose another with "
                         "`slmtui doctor --restore-store N`.") from None
    if not isinstance(data, dict):
        raise ValueError(f"The backup {source} is not a store; choose another with `slmtui doctor --restore-store N`.")
    aside = None
    if store.exists() or store.is_symlink():
        aside = store.with_name(f"{store.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        n = 1
        while aside.exists():
            n += 1
            aside = aside.with_name(f"{store.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
        if store.is_dir() and not store.is_symlink():
            os.rename(store, aside)  # a folder in the store's place: moved aside whole
        else:
            os.link(store, aside)  # the store stays in place until the backup replaces it in one rename
    tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, store)
    return aside
