"""Which shape a dataset has (instruction, chat, prompt/completion, text), and its rows in canonical fields.

Canonical fields: instruction, input, output (instruction); messages (chat); prompt, completion
(prompt_completion; `response` is an alias of completion); text (text). `--map FIELD=COLUMN` renames source
columns onto them. When the columns fit no shape, `DataError` names the columns and the `--map` to give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.data.load import Invalid
from engine.data.options import DataError
from engine.safe_text import visible_line

#: shape -> (required canonical fields, optional ones)
SHAPE_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "chat": (("messages",), ()),
    "instruction": (("instruction", "output"), ("input",)),
    "prompt_completion": (("prompt", "completion"), ()),
    "text": (("text",), ()),
}
_ALIASES = {"response": "completion", "conversations": "messages"}
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "model": "assistant",
          "bot": "assistant", "system": "system"}
_PROMPT_LIKE = ("question", "query", "prompt", "input", "source", "context", "problem", "article", "document")
_RESPONSE_LIKE = ("answer", "response", "output", "target", "completion", "solution", "summary", "reply")
LABEL_COLUMNS = ("label", "category", "class", "intent")


@dataclass
class Row:
    """One row in canonical fields, with its source line and label (if any)."""

    line: int
    fields: dict[str, Any]
    label: str | None = None


def names(columns: list[str]) -> str:
    """Column names for a one-line message (odd characters escaped)."""
    return ", ".join(visible_line(c) for c in columns) or "(none)"


def columns_of(rows: list[tuple[int, dict[str, Any]]], sample: int = 200) -> list[str]:
    """Column names in first-seen order over the first `sample` rows."""
    seen: dict[str, None] = {}
    for _, row in rows[:sample]:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _canonical_columns(columns: list[str], mapping: dict[str, str]) -> dict[str, str]:
    """canonical field -> source column, from the mapping and the columns' own names."""
    out: dict[str, str] = {}
    for col in columns:
        canon = _ALIASES.get(col, col)
        if canon in {f for req, opt in SHAPE_FIELDS.values() for f in (*req, *opt)}:
            out.setdefault(canon, col)
    for canon, col in mapping.items():
        canon = _ALIASES.get(canon, canon)
        if col not in columns:
            raise DataError(f"--map names column {col!r}, which the data does not have; "
                            f"the columns are {names(columns)}.")
        out[canon] = col
    return out


def suggest_map(columns: list[str]) -> str:
    """A `--map` that would probably fit, from column names that look like a prompt and a response."""
    lower = {c.lower(): c for c in columns}
    prompt = next((lower[n] for n in _PROMPT_LIKE if n in lower), columns[0] if columns else "COLUMN")
    response = next((lower[n] for n in _RESPONSE_LIKE if n in lower and lower[n] != prompt),
                    next((c for c in columns if c != prompt), "COLUMN"))
    return f"--map prompt={names([prompt])},response={names([response])}"


def detect_shape(columns: list[str], shape: str, mapping: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The shape and the canonical-field -> column mapping; `DataError` when no shape fits."""
    canon = _canonical_columns(columns, mapping)
    if shape != "auto":
        required, _ = SHAPE_FIELDS[shape]
        missing = [f for f in required if f not in canon]
        if missing:
            raise DataError(f"shape {shape} needs field {missing[0]!r} but the columns are "
                            f"{names(columns)}; map one with --map {missing[0]}=COLUMN.")
        return shape, canon
    for name in ("chat", "instruction", "prompt_completion", "text"):
        if all(f in canon for f in SHAPE_FIELDS[name][0]):
            return name, canon
    raise DataError(f"cannot tell the shape of the data from its columns ({names(columns)}); "
                    f"say which columns to use, for example {suggest_map(columns)}.")


def detect_label_column(columns: list[str], given: str, used: set[str]) -> str | None:
    """The label column: the one given (must exist), else `label`/`category`/... when present and unused."""
    if given:
        if given not in columns:
            raise DataError(f"label column {given!r} does not exist; the columns are {names(columns)}.")
        return given
    return next((c for c in columns if c.lower() in LABEL_COLUMNS and c not in used), None)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    return None


def _json_type(value: Any) -> str:
    """A value's type as the data's author knows it (JSON names; a Parquet list column is a list too)."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return f"a {type(value).__name__}"


def _messages(value: Any) -> list[dict[str, str]] | str:
    """Messages normalised to role/content, or the reason they cannot be."""
    if not isinstance(value, list) or not value:
        return "messages is not a non-empty list"
    out = []
    for i, msg in enumerate(value):
        if not isinstance(msg, dict):
            return f"message {i + 1} is not an object"
        role = _ROLES.get(str(msg.get("role", msg.get("from", ""))).lower())
        content = msg.get("content", msg.get("value"))
        if role is None or not isinstance(content, str):
            return f"message {i + 1} needs a role (system, user, assistant) and a text content"
        out.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in out):
        return "the conversation has no assistant message to learn from"
    return out


def to_rows(rows: list[tuple[int, dict[str, Any]]], shape: str, canon: dict[str, str],
            label_column: str | None) -> tuple[list[Row], list[Invalid]]:
    """Rows in canonical fields; rows missing a required field or holding the wrong type become `Invalid`."""
    required, optional = SHAPE_FIELDS[shape]
    good: list[Row] = []
    bad: list[Invalid] = []
    for line, raw in rows:
        fields: dict[str, Any] = {}
        reason = None
        for name in (*required, *optional):
            col = canon.get(name)
            value = raw.get(col) if col is not None else None
            if name == "messages":
                msgs = _messages(value)
                if isinstance(msgs, str):
                    reason = msgs
                    break
                fields[name] = msgs
                continue
            text = _text(value)
            if text is None and value is not None:  # a list, an object: never silently an empty field
                reason = f"field {col!r} is {_json_type(value)}, not text; give it a string"
                break
            if text is None or (name in required and not text.strip()):
                if name in required:
                    has = names([str(k) for k, v in raw.items() if v not in (None, "")])
                    reason = f"field {col or name!r} is missing or empty (row has: {has})"
                    break
                text = ""
            fields[name] = text
        if reason:
            bad.append(Invalid(line, reason))
            continue
        label = _text(raw.get(label_column)) if label_column else None
        good.append(Row(line, fields, label))
    return good, bad
