"""The local document store: journal, run index cache, checklist, shortlist, evaluation results and settings.

The only module that touches tinydb. One JSON file, `HOME/slmtui.json`, with a schema version. Every call is
one transaction: take the cross-process lock (`slmtui.json.lock`), read the file, change it, write a temp
file, fsync it, keep the previous version as `slmtui.json.bak` (a hard link, no copy; older generations in
`slmtui.store_backup`) and rename the temp file over the store. A crash at any moment leaves either the old or
the new file, never a torn one, and a file that cannot be read (or is not shaped as a store) is never replaced:
the error names it and its backup. A store or HOME that cannot be written is one `StoreError` sentence.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from tinydb import Query, TinyDB
from tinydb.storages import Storage
from tinydb.table import Document

from engine.paths import HomeError, slmtui_home
from slmtui import store_backup

_R = TypeVar("_R")

SCHEMA_VERSION = 1
STORE_FILE = "slmtui.json"

JOURNAL_KINDS = ("note", "aha", "challenge", "breakthrough", "hyperparams", "data", "oom")

_META, _JOURNAL, _RUNS, _SETTINGS, _CHECKLIST, _SHORTLIST, _EVALS = (
    "meta",
    "journal",
    "runs",
    "settings",
    "checklist",
    "shortlist",
    "evals",
)

#: The figures of an evaluation result kept under `EvalResult.metrics`; the rest goes to `details`.
EVAL_METRICS = ("loss", "perplexity", "bits_per_char", "accuracy", "tokens_per_s", "score_tokens_per_s",
                "mem_peak_gib")
#: What a result of a run's base-against-fine-tuned comparison is.
EVAL_ROLES = ("base", "fine-tuned")


class StoreError(Exception):
    """A store problem the user can act on, as one sentence."""


@dataclass(frozen=True)
class JournalEntry:
    """One journal entry: a person's note, or one the store derived from a run's events (`source`)."""

    id: int
    kind: str
    text: str
    run: str | None = None
    step: int | None = None
    created: float = 0.0
    updated: float | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RunRecord:
    """A run as the store's index caches it (the run folder stays the source of truth)."""

    id: str
    dir: str
    status: str
    started: float | None = None
    ended: float | None = None
    name: str = ""
    model: str = ""
    method: str = ""
    latest: dict[str, Any] = field(default_factory=dict)
    best: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)
    last_seq: int = -1
    events_offset: int = 0
    tags: tuple[str, ...] = ()
    archived: bool = False

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["tags"] = list(self.tags)
        return data


@dataclass(frozen=True)
class EvalResult:
    """One quick evaluation of one model on a slice of one dataset (`python -m engine eval`'s result).

    `run` and `role` are set for a run's base-against-fine-tuned comparison; `metrics` holds the figures
    named in `EVAL_METRICS` (None where not computed), `details` everything else the engine reported.
    """

    id: int
    eval_id: str
    model: str
    data: str
    split: str
    examples: int
    created: float
    run: str | None = None
    role: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def metric(self, key: str) -> float | None:
        """A figure as a number, or None when it was not computed."""
        value = self.metrics.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class _AtomicJSONStorage(Storage):
    """tinydb storage that reads the whole file and writes it back atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _unreadable(self, why: str) -> StoreError:
        backup = store_backup.backup_path(self.path, 1)
        hint = f"the previous version is kept in {backup}" if backup.exists() else "no backup exists yet"
        how = "restore it with `slmtui doctor --restore-store`" if backup.exists() else "move it aside"
        return StoreError(f"The store {self.path} cannot be read ({why}); it was left untouched and {hint}: {how}.")

    def read(self) -> dict[str, dict[str, Any]] | None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except IsADirectoryError:
            raise self._unreadable("it is a folder, not a file") from None
        except OSError as exc:
            raise self._unreadable(exc.strerror or str(exc)) from None
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"a JSON {type(data).__name__}, not an object")
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._unreadable(str(exc)) from exc
        problem = _shape_problem(data)
        if problem:
            raise self._unreadable(problem)
        return data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, ensure_ascii=False, separators=(",", ":"))
                fh.flush()
                os.fsync(fh.fileno())
            store_backup.rotate(self.path)
            os.replace(tmp, self.path)
        except OSError as exc:
            with suppress(OSError):
                os.unlink(tmp)
            raise _unwritable(self.path, exc) from None
        with suppress(OSError):  # the rename is done; a folder that cannot be synced loses nothing more
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def close(self) -> None:
        pass


def _unwritable(path: Path, exc: OSError) -> StoreError:
    """The sentence for a store that cannot be written (read-only or full disk, a folder in its way)."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        fix = f"free some space on the disk holding {path.parent}"
    else:
        fix = f"make {path.parent} writable or set SLMTUI_HOME to a writable folder"
    return StoreError(f"The store {path} could not be written ({why}), so nothing was changed; {fix}.")


def _shape_problem(data: dict[str, Any]) -> str | None:
    """What is wrong with a parsed store's shape (tables of numbered objects), or None."""
    for name, docs in data.items():
        if not isinstance(docs, dict):
            return f"its table {name!r} is a JSON {type(docs).__name__}, not an object"
        for doc_id, doc in docs.items():
            if not doc_id.isdigit() or not isinstance(doc, dict):
                return f"its table {name!r} holds {doc_id!r}, not a numbered object"
    return None


class _Keep:
    """Sentinel type: leave the field as it is."""


KEEP = _Keep()


class Store:
    """The facade every console screen and CLI command uses; returns dataclasses, never rows."""

    def __init__(self, home: Path | None = None) -> None:
        try:
            self.home = Path(home) if home is not None else slmtui_home()
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        except HomeError as exc:
            raise StoreError(str(exc)) from None
        except OSError as exc:
            raise StoreError(f"The store's folder {home} cannot be used ({exc.strerror or exc}); set SLMTUI_HOME "
                             "to a writable folder.") from None
        self.path = self.home / STORE_FILE
        self._lock_path = self.home / (STORE_FILE + ".lock")

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _locked(self, write: bool) -> Iterator[None]:
        """Hold the cross-process lock: exclusive to write, shared to read. A HOME where the lock file cannot be
        created (read-only) can still be read, unlocked: nobody can be writing there."""
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            if write:
                raise _unwritable(self.path, exc) from None
            try:
                fd = os.open(self._lock_path, os.O_RDONLY)
            except OSError:
                yield
                return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[TinyDB]:
        """One locked read (and write) of the whole file. tinydb writes through the storage on each change."""
        with self._locked(write):
            storage = _AtomicJSONStorage(self.path)
            data = storage.read()
            if data is not None:
                self._check_schema(data)
            db = TinyDB(storage=_BufferedStorage, base=storage, initial=data)
            yield db
            buffered = db.storage
            assert isinstance(buffered, _BufferedStorage)
            if write and buffered.dirty:
                out = buffered.data
                out.setdefault(_META, {})["1"] = {"schema": SCHEMA_VERSION, "written": time.time()}
                storage.write(out)

    def records(self) -> int:
        """How many records (journal entries, evaluation results, settings, ...) the store holds."""
        with self._transaction(write=False) as db:
            buffered = db.storage
            assert isinstance(buffered, _BufferedStorage)
            return store_backup.count_records(buffered.data)

    def backups(self) -> list[store_backup.Backup]:
        """The store's backup generations, newest first."""
        return store_backup.backups(self.path)

    def restore_backup(self, generation: int) -> Path | None:
        """Put backup `generation` in place of the store, even an unreadable one; returns where the replaced store
        was moved (None when there was none)."""
        with self._locked(write=True):
            try:
                return store_backup.restore(self.path, generation)
            except ValueError as exc:
                raise StoreError(str(exc)) from None
            except OSError as exc:
                raise _unwritable(self.path, exc) from None

    def _check_schema(self, data: dict[str, Any]) -> None:
        meta = data.get(_META, {}).get("1", {})  # the shape was checked on reading
        schema = meta.get("schema", SCHEMA_VERSION) if isinstance(meta, dict) else SCHEMA_VERSION
        if isinstance(schema, int) and schema > SCHEMA_VERSION:
            raise StoreError(
                f"The store {self.path} was written by a newer slmtui (schema {schema}, this one reads "
                f"{SCHEMA_VERSION}); upgrade slmtui or set SLMTUI_HOME to another folder."
            )

    def change_token(self) -> tuple[int, int, int]:
        """Cheap: differs after any write by any process (the file is replaced on every write)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    # ------------------------------------------------------------------ journal

    def add_entry(self, text: str, kind: str = "note", run: str | None = None, step: int | None = None,
                  source: str | None = None) -> JournalEntry:
        """Add a journal entry; returns it once it is safely on disk."""
        kind = _check_kind(kind)
        if not text.strip():
            raise StoreError("A journal entry needs some text; write what happened or what you noticed.")
        if step is not None and step < 0:
            raise StoreError(f"The step must be 0 or more, not {step}.")
        with self._transaction(write=True) as db:
            table = db.table(_JOURNAL, cache_size=0)
            if source is not None:
                existing = table.get(Query().source == source)
                if existing is not None:
                    return _entry(existing)
            doc = {"kind": kind, "text": text, "run": run, "step": step, "created": time.time(), "updated": None,
                   "source": source}
            doc_id = _insert_with_fresh_id(db, table, doc)
            return _entry({**doc, "__id": doc_id})

    def add_entries(self, entries: Iterable[dict[str, Any]]) -> int:
        """Add several derived entries in one transaction, skipping `source`s already present; returns how many."""
        added = 0
        with self._transaction(write=True) as db:
            table = db.table(_JOURNAL, cache_size=0)
            seen = {doc.get("source") for doc in table.all()}
            for item in entries:
                if item.get("source") in seen:
                    continue
                doc = {"kind": _check_kind(item.get("kind", "note")), "text": item["text"], "run": item.get("run"),
                       "step": item.get("step"), "created": item.get("created", time.time()), "updated": None,
                       "source": item.get("source")}
                _insert_with_fresh_id(db, table, doc)
                seen.add(doc["source"])
                added += 1
        return added

    def update_entry(self, entry_id: int, *, text: str | None = None, kind: str | None = None,
                     run: str | _Keep | None = KEEP, step: int | _Keep | None = KEEP) -> JournalEntry:
        """Change an entry's text, kind, run or step; fields not given stay as they are."""
        changes: dict[str, Any] = {"updated": time.time()}
        if text is not None:
            if not text.strip():
                raise StoreError("A journal entry cannot be emptied; delete it instead.")
            changes["text"] = text
        if kind is not None:
            changes["kind"] = _check_kind(kind)
        if not isinstance(run, _Keep):
            changes["run"] = run or None
        if not isinstance(step, _Keep):
            if step is not None and step < 0:
                raise StoreError(f"The step must be 0 or more, not {step}.")
            changes["step"] = step
        with self._transaction(write=True) as db:
            table = db.table(_JOURNAL, cache_size=0)
            doc = table.get(doc_id=entry_id)
            if doc is None:
                raise StoreError(f"There is no journal entry {entry_id}; `slmtui journal list` shows the ids.")
            table.update(changes, doc_ids=[entry_id])
            return _entry({**doc, **changes, "__id": entry_id})

    def delete_entry(self, entry_id: int) -> None:
        with self._transaction(write=True) as db:
            table = db.table(_JOURNAL, cache_size=0)
            if table.get(doc_id=entry_id) is None:
                raise StoreError(f"There is no journal entry {entry_id}; `slmtui journal list` shows the ids.")
            table.remove(doc_ids=[entry_id])

    def get_entry(self, entry_id: int) -> JournalEntry | None:
        with self._transaction(write=False) as db:
            doc = db.table(_JOURNAL, cache_size=0).get(doc_id=entry_id)
            return None if doc is None else _entry(doc)

    def entries(self, kind: str | None = None, text: str | None = None, run: str | None = None) -> list[JournalEntry]:
        """Journal entries, oldest first, optionally filtered by kind, run and (case-insensitive) text."""
        with self._transaction(write=False) as db:
            docs = db.table(_JOURNAL, cache_size=0).all()
        found = [_entry(doc) for doc in docs]
        if kind:
            found = [e for e in found if e.kind == kind]
        if run:
            found = [e for e in found if e.run == run]
        if text:
            needle = text.casefold()
            found = [e for e in found if needle in e.text.casefold()]
        return sorted(found, key=lambda e: (e.created, e.id))

    # ------------------------------------------------------------------ settings, checklist, shortlist

    def setting(self, key: str, default: Any = None) -> Any:
        return self._singleton(_SETTINGS).get(key, default)

    def set_setting(self, key: str, value: Any) -> None:
        self._update_singleton(_SETTINGS, {key: value})

    def checklist(self) -> dict[str, Any]:
        return self._singleton(_CHECKLIST)

    def save_checklist(self, answers: dict[str, Any]) -> None:
        self._update_singleton(_CHECKLIST, dict(answers), replace=True)

    def shortlist(self) -> list[dict[str, Any]]:
        return list(self._singleton(_SHORTLIST).get("items", []))

    def save_shortlist(self, items: list[dict[str, Any]]) -> None:
        self._update_singleton(_SHORTLIST, {"items": list(items)}, replace=True)

    def _singleton(self, table_name: str) -> dict[str, Any]:
        with self._transaction(write=False) as db:
            doc = db.table(table_name, cache_size=0).get(doc_id=1)
        return dict(doc) if doc else {}

    def _update_singleton(self, table_name: str, values: dict[str, Any], replace: bool = False) -> None:
        json.dumps(values)  # refuse what the file could not hold before touching it
        with self._transaction(write=True) as db:
            table = db.table(table_name, cache_size=0)
            current = {} if replace else dict(table.get(doc_id=1) or {})
            current.update(values)
            table.truncate()
            table.insert(current)

    # ------------------------------------------------------------------ evaluation results

    def add_eval_result(self, result: dict[str, Any], run: str | None = None, role: str | None = None) -> EvalResult:
        """Keep an engine evaluation result (its JSON as printed); returns it with its store id."""
        if role is not None and role not in EVAL_ROLES:
            raise StoreError(f"Unknown evaluation role {role!r}; use one of {', '.join(EVAL_ROLES)}.")
        if not result.get("model"):
            raise StoreError("An evaluation result needs the model it evaluated.")
        doc = {
            "eval_id": str(result.get("id") or ""),
            "model": str(result["model"]),
            "data": str(result.get("data") or ""),
            "split": str(result.get("split") or "validation"),
            "examples": int(result.get("examples") or 0),
            "created": float(result.get("t") or time.time()),
            "run": run,
            "role": role,
            "metrics": {k: result.get(k) for k in EVAL_METRICS},
            "details": {k: v for k, v in result.items() if k not in EVAL_METRICS},
        }
        json.dumps(doc)  # refuse what the file could not hold before touching it
        with self._transaction(write=True) as db:
            doc_id = _insert_with_fresh_id(db, db.table(_EVALS, cache_size=0), doc)
        return _eval({**doc, "__id": doc_id})

    def eval_results(self, model: str | None = None, run: str | None = None,
                     data: str | None = None) -> list[EvalResult]:
        """Evaluation results, oldest first, optionally only one model's, one run's or one dataset's."""
        with self._transaction(write=False) as db:
            docs = db.table(_EVALS, cache_size=0).all()
        found = [_eval(doc) for doc in docs]
        if model is not None:
            found = [r for r in found if r.model == model]
        if run is not None:
            found = [r for r in found if r.run == run]
        if data is not None:
            found = [r for r in found if r.data == data]
        return sorted(found, key=lambda r: (r.created, r.id))

    def update_eval_details(self, result_id: int, **details: Any) -> EvalResult:
        """Add or replace fields of a result's `details` (a comparison's gain, say)."""
        json.dumps(details)
        with self._transaction(write=True) as db:
            table = db.table(_EVALS, cache_size=0)
            doc = table.get(doc_id=result_id)
            if doc is None:
                raise StoreError(f"There is no evaluation result {result_id}; `slmtui evals` lists them.")
            merged = {**doc.get("details", {}), **details}
            table.update({"details": merged}, doc_ids=[result_id])
            return _eval({**doc, "details": merged, "__id": result_id})

    def delete_eval_result(self, result_id: int) -> None:
        with self._transaction(write=True) as db:
            table = db.table(_EVALS, cache_size=0)
            if table.get(doc_id=result_id) is None:
                raise StoreError(f"There is no evaluation result {result_id}; `slmtui evals` lists them.")
            table.remove(doc_ids=[result_id])

    # ------------------------------------------------------------------ run index

    def runs(self) -> list[RunRecord]:
        """The cached run index, newest first."""
        with self._transaction(write=False) as db:
            docs = db.table(_RUNS, cache_size=0).all()
        return sorted((_run(doc) for doc in docs), key=lambda r: r.id, reverse=True)

    def upsert_runs(self, records: Iterable[RunRecord]) -> None:
        """Insert or refresh runs; tags and archived state (written by people) are kept."""
        with self._transaction(write=True) as db:
            table = db.table(_RUNS, cache_size=0)
            by_id = {doc["id"]: doc for doc in table.all()}
            for record in records:
                data = record.to_json()
                old = by_id.get(record.id)
                if old is not None:
                    data["tags"], data["archived"] = old.get("tags", []), old.get("archived", False)
                    if {k: old.get(k) for k in data} != data:
                        table.update(data, doc_ids=[old.doc_id])
                else:
                    table.insert(data)

    def set_run_meta(self, run_id: str, *, tags: Iterable[str] | None = None, archived: bool | None = None) -> None:
        changes: dict[str, Any] = {}
        if tags is not None:
            changes["tags"] = sorted(set(tags))
        if archived is not None:
            changes["archived"] = archived
        with self._transaction(write=True) as db:
            table = db.table(_RUNS, cache_size=0)
            if not table.update(changes, Query().id == run_id):
                raise StoreError(f"There is no run {run_id} in the index; `slmtui runs` lists them.")

    def forget_run(self, run_id: str) -> None:
        """Drop a run from the index (its folder was deleted); its journal entries stay, still naming it."""
        with self._transaction(write=True) as db:
            db.table(_RUNS, cache_size=0).remove(Query().id == run_id)


class _BufferedStorage(Storage):
    """Holds one transaction's data in memory; `Store._transaction` writes it once at the end."""

    def __init__(self, base: _AtomicJSONStorage, initial: dict[str, Any] | None) -> None:
        self.base = base
        self.data: dict[str, Any] = initial or {}
        self.dirty = False

    def read(self) -> dict[str, Any] | None:
        return self.data

    def write(self, data: dict[str, Any]) -> None:
        self.data = data
        self.dirty = True


def _insert_with_fresh_id(db: TinyDB, table: Any, doc: dict[str, Any]) -> int:
    """Insert with an id never used before, even by a deleted entry (ids are what people and scripts quote)."""
    meta = db.table(_META, cache_size=0)
    counters = dict(meta.get(doc_id=2) or {})
    existing = max((d.doc_id for d in table.all()), default=0)
    doc_id = max(int(counters.get(table.name, 0)), existing) + 1
    table.insert(Document(doc, doc_id=doc_id))
    counters[table.name] = doc_id
    meta.upsert(Document(counters, doc_id=2))
    return doc_id


def _check_kind(kind: str) -> str:
    if kind not in JOURNAL_KINDS:
        raise StoreError(f"Unknown journal kind {kind!r}; use one of {', '.join(JOURNAL_KINDS)}.")
    return kind


def _record_kind(what: str) -> Callable[[Callable[[Any], _R]], Callable[[Any], _R]]:
    """A record converter that turns a record of the wrong types (edited by hand) into one `StoreError` sentence."""
    def wrap(convert: Callable[[Any], _R]) -> Callable[[Any], _R]:
        @wraps(convert)
        def checked(doc: Any) -> _R:
            doc_id = getattr(doc, "doc_id", None) or (doc.get("__id") if isinstance(doc, dict) else None)
            try:
                return convert(doc)
            except (TypeError, ValueError, AttributeError) as exc:
                raise StoreError(f"The store {STORE_FILE} holds {what} {doc_id} of the wrong shape ({exc}); fix it "
                                 "in the file, or restore a backup with `slmtui doctor --restore-store`.") from None
        return checked
    return wrap


@_record_kind('journal entry')
def _entry(doc: Any) -> JournalEntry:
    doc_id = doc.pop("__id", None) if isinstance(doc, dict) and "__id" in doc else getattr(doc, "doc_id", 0)
    return JournalEntry(
        id=int(doc_id),
        kind=str(doc.get("kind", "note")),
        text=str(doc.get("text", "")),
        run=doc.get("run"),
        step=doc.get("step"),
        created=float(doc.get("created", 0.0)),
        updated=doc.get("updated"),
        source=doc.get("source"),
    )


@_record_kind('evaluation result')
def _eval(doc: Any) -> EvalResult:
    doc_id = doc.pop("__id", None) if isinstance(doc, dict) and "__id" in doc else getattr(doc, "doc_id", 0)
    return EvalResult(
        id=int(doc_id),
        eval_id=str(doc.get("eval_id", "")),
        model=str(doc.get("model", "")),
        data=str(doc.get("data", "")),
        split=str(doc.get("split", "validation")),
        examples=int(doc.get("examples") or 0),
        created=float(doc.get("created") or 0.0),
        run=doc.get("run"),
        role=doc.get("role"),
        metrics=dict(doc.get("metrics") or {}),
        details=dict(doc.get("details") or {}),
    )


@_record_kind('run index record')
def _run(doc: dict[str, Any]) -> RunRecord:
    known = {f for f in RunRecord.__dataclass_fields__}
    data = {k: v for k, v in doc.items() if k in known}
    data["tags"] = tuple(data.get("tags", ()))
    return RunRecord(**data)
