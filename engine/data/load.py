"""Reading a dataset source into rows: JSONL, JSON, CSV, Parquet, a `save_to_disk` folder, or a hub id.

Bad input never raises by itself: every row that cannot be read becomes an `Invalid` with its 1-based line
number and a reason, and the caller's policy decides whether that stops the job. The source is only read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.data.options import DataError
from engine.paths import special_file

#: One row larger than this is reported instead of read (a runaway line, a file without newlines).
MAX_ROW_BYTES = 4 * 1024 * 1024
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


@dataclass
class Invalid:
    """A row that could not be read: where (1-based line, or row for Parquet and datasets) and why."""

    line: int
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """The `{"line", "reason"}` form of the report."""
        return {"line": self.line, "reason": self.reason}


@dataclass
class Loaded:
    """What a source held: rows (each with its line number), the rows it could not read, and its identity."""

    rows: list[tuple[int, dict[str, Any]]]
    invalid: list[Invalid] = field(default_factory=list)
    empty: int = 0
    format: str = ""
    content_hash: str = ""
    size_bytes: int = 0


def detect_format(path: str, fmt: str = "auto") -> str:
    """The source format: given, or from the file suffix, a `save_to_disk` folder, or a hub id."""
    if fmt != "auto":
        return fmt
    p = Path(path).expanduser()
    if p.is_dir():
        if any((p / name).exists() for name in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return "disk"
        raise DataError(f"{path} is a folder but not one written by save_to_disk; give a file or such a folder.")
    if p.is_file():
        suffix = p.suffix.lower()
        for fmt_name, suffixes in (("jsonl", (".jsonl", ".ndjson")), ("json", (".json",)),
                                   ("csv", (".csv", ".tsv")), ("parquet", (".parquet", ".pq"))):
            if suffix in suffixes:
                return fmt_name
        raise DataError(f"cannot tell the format of {p.name}; rename it to .jsonl, .json, .csv or .parquet "
                        "or pass the format.")
    what = special_file(p)
    if what:
        raise DataError(f"{path} is {what}, not a dataset; give a JSONL, JSON, CSV or Parquet file or a "
                        "save_to_disk folder.")
    if _HUB_ID.match(path) and not path.startswith((".", "/")):
        return "hub"
    raise DataError(f"no file or folder at {path}; check the path.")


def source_hash(path: str, fmt: str = "auto", split_name: str = "train") -> str | None:
    """The content digest `load_source` would report, without parsing; None for hub ids (known after loading)."""
    fmt = detect_format(path, fmt)
    p = Path(path).expanduser()
    if fmt == "hub":
        return None
    if fmt == "disk":
        return _folder_hash(p) + f":{split_name}"
    if not p.is_file():
        raise DataError(f"no file at {path}; check the path.")
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _folder_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(file.relative_to(folder).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def load_source(path: str, fmt: str = "auto", split_name: str = "train") -> Loaded:
    """Read `path` in format `fmt` ("auto" detects it); raises `DataError` only when nothing can be read."""
    fmt = detect_format(path, fmt)
    if fmt in ("jsonl", "json", "csv", "parquet"):
        file = Path(path).expanduser()
        if not file.is_file():
            raise DataError(f"no file at {path}; check the path.")
        data = file.read_bytes()
        if fmt == "parquet":
            loaded = _parquet(file)
        elif not data.strip():
            raise DataError(f"{file.name} is empty; give a file with at least one row.")
        elif fmt == "jsonl":
            loaded = _jsonl(data)
        elif fmt == "json":
            loaded = _json(data)
        else:
            loaded = _csv(data, delimiter="\t" if file.suffix.lower() == ".tsv" else ",")
        loaded.content_hash = hashlib.sha256(data).hexdigest()
        loaded.size_bytes = len(data)
    elif fmt == "disk":
        loaded = _disk(Path(path).expanduser(), split_name)
    else:
        loaded = _hub(path, split_name)
    if fmt != "jsonl":  # JSONL lines were measured as they were split
        _set_aside_oversized(loaded)
    if not loaded.rows and loaded.invalid:
        first = loaded.invalid[0]
        raise DataError(f"no readable rows in {path} ({len(loaded.invalid)} invalid, {loaded.empty} empty; line "
                        f"{first.line}: {first.reason}); check the file's format.")
    loaded.format = fmt
    return loaded


def _set_aside_oversized(loaded: Loaded) -> None:
    """Rows over `MAX_ROW_BYTES` become `Invalid` (a JSON array, Parquet or a dataset has no lines to measure)."""
    kept = []
    for line, row in loaded.rows:
        chars = sum(len(v) for v in row.values() if isinstance(v, str | bytes))
        size = chars
        if chars * 4 > MAX_ROW_BYTES:  # only then worth measuring exactly
            size = len(json.dumps(row, ensure_ascii=False, default=str).encode("utf-8", "surrogatepass"))
        if size > MAX_ROW_BYTES:
            loaded.invalid.append(_too_big_size(size, line))
        else:
            kept.append((line, row))
    loaded.rows = kept


def _decode(raw: bytes, line: int) -> tuple[str | None, Invalid | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, Invalid(line, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")


def _too_big(raw: bytes, line: int) -> Invalid | None:
    return _too_big_size(len(raw), line) if len(raw) > MAX_ROW_BYTES else None


def _too_big_size(size: int, line: int) -> Invalid:
    return Invalid(line, f"row is {size / 2**20:.1f} MiB, over the {MAX_ROW_BYTES // 2**20} MiB limit per row; "
                         "split or shorten it")


def _jsonl(data: bytes) -> Loaded:
    out = Loaded(rows=[])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline that ends the last row
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            out.empty += 1
            continue
        bad = _too_big(raw, number)
        text, bad = (None, bad) if bad else _decode(raw, number)
        if bad or text is None:
            out.invalid.append(bad or Invalid(number, "unreadable"))
            continue
        try:
            obj = json.loads(text)
        except ValueError as exc:
            out.invalid.append(Invalid(number, f"malformed JSON: {getattr(exc, 'msg', str(exc))} "
                                               f"at column {getattr(exc, 'colno', 0)}"))
            continue
        if not isinstance(obj, dict):
            out.invalid.append(Invalid(number, f"a JSON {type(obj).__name__}, not an object with fields"))
            continue
        out.rows.append((number, obj))
    return out


def _json(data: bytes) -> Loaded:
    try:
        text = data.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"the JSON file is not UTF-8 text (line {line}); re-save it as UTF-8.") from None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise DataError(f"the JSON file is malformed at line {getattr(exc, 'lineno', '?')}: "
                        f"{getattr(exc, 'msg', exc)}; fix it or convert it to JSONL.") from None
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) == 1:
            doc = lists[0]
        elif doc and all(isinstance(v, list) for v in doc.values()) and len({len(v) for v in doc.values()}) == 1:
            keys = list(doc)
            doc = [dict(zip(keys, values, strict=True)) for values in zip(*doc.values(), strict=True)]
        else:
            raise DataError("the JSON file holds an object, not a list of rows; give a list of objects.")
    if not isinstance(doc, list):
        raise DataError("the JSON file holds no list of rows; give a list of objects.")
    out = Loaded(rows=[])
    lines = _item_lines(text, len(doc))
    for i, item in enumerate(doc):
        line = lines[i] if i < len(lines) else i + 1
        if isinstance(item, dict):
            out.rows.append((line, item))
        else:
            out.invalid.append(Invalid(line, f"a JSON {type(item).__name__}, not an object with fields"))
    return out


def _item_lines(text: str, count: int) -> list[int]:
    """The 1-based line where each top-level item of a JSON array starts (best effort)."""
    decoder = json.JSONDecoder()
    start = text.find("[")
    if start < 0:
        return []
    lines: list[int] = []
    pos, line, scanned = start + 1, 1 + text.count("\n", 0, start + 1), start + 1
    while len(lines) < count:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text) or text[pos] == "]":
            break
        line += text.count("\n", scanned, pos)
        scanned = pos
        lines.append(line)
        try:
            _, pos = decoder.raw_decode(text, pos)
        except ValueError:
            break
    return lines


def _csv(data: bytes, delimiter: str = ",") -> Loaded:
    out = Loaded(rows=[])
    csv.field_size_limit(MAX_ROW_BYTES)  # the default (128 KiB) would turn long documents into errors
    text = data.decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    line = 1
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            over = "field larger than field limit" in str(exc)
            out.invalid.append(Invalid(reader.line_num, f"a field is over the {MAX_ROW_BYTES // 2**20} MiB limit "
                                       "per row; split or shorten it" if over else f"unreadable CSV: {exc}"))
            line = reader.line_num + 1
            continue
        start, line = line, reader.line_num + 1
        if header is None:
            if any(_has_surrogates(c) for c in record):
                raise DataError("the CSV header is not UTF-8 text; re-save the file as UTF-8.")
            header = [c.strip() for c in record]
            continue
        if not record or not any(c.strip() for c in record):
            out.empty += 1
            continue
        if any(_has_surrogates(c) for c in record):
            out.invalid.append(Invalid(start, "not UTF-8 text"))
        elif sum(len(c) for c in record) > MAX_ROW_BYTES:
            out.invalid.append(Invalid(start, f"row is over the {MAX_ROW_BYTES // 2**20} MiB limit per row; "
                                              "split or shorten it"))
        elif len(record) != len(header):
            out.invalid.append(Invalid(start, f"has {len(record)} fields, the header has {len(header)}"))
        else:
            out.rows.append((start, dict(zip(header, record, strict=True))))
    if header is None:
        raise DataError("the CSV file has no header row; add one naming the columns.")
    return out


def _has_surrogates(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parquet(file: Path) -> Loaded:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"cannot read {file.name} as Parquet ({str(exc).splitlines()[0][:120]}); "
                        "check the file.") from None
    return Loaded(rows=[(i + 1, row) for i, row in enumerate(table.to_pylist())])


def _from_dataset(ds: Any) -> Loaded:
    return Loaded(rows=[(i + 1, dict(row)) for i, row in enumerate(ds)],
                  content_hash=str(getattr(ds, "_fingerprint", "")))


def _disk(folder: Path, split_name: str) -> Loaded:
    import datasets

    try:
        ds = datasets.load_from_disk(str(folder))
    except Exception as exc:  # datasets raises FileNotFoundError or its own errors for foreign folders
        raise DataError(f"cannot load {folder} with load_from_disk ({str(exc)[:120]}); check the folder.") from None
    if isinstance(ds, datasets.DatasetDict):
        if split_name not in ds:
            raise DataError(f"{folder} has no split {split_name!r}; its splits are {', '.join(ds)}.")
        ds = ds[split_name]
    loaded = _from_dataset(ds)
    loaded.content_hash = _folder_hash(folder) + f":{split_name}"
    return loaded


def _hub(name: str, split_name: str) -> Loaded:
    import datasets

    try:
        ds = datasets.load_dataset(name, split=split_name)
    except Exception as exc:  # offline, unknown id, missing split: all one message to the user
        raise DataError(f"cannot load {name!r} from the hub ({str(exc).splitlines()[0][:120]}); "
                        "check the id and split, or download it and give the folder.") from None
    loaded = _from_dataset(ds)
    loaded.content_hash = f"hub:{name}:{split_name}:{loaded.content_hash}"
    return loaded
