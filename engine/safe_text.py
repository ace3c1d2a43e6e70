"""Text from outside made safe to print or draw: datasets, journal entries, model output, logs, file names.

A terminal obeys the control characters in what it is sent: ESC starts sequences that clear the screen, set
the window title or write the clipboard (OSC 52), and the C1 controls (U+0080–U+009F) do the same on some
terminals. `visible` turns each such character into a visible stand-in (ESC into `␛`, a C1 control into
`\\x9b`), so the text shows what it holds and never drives the terminal. `safe_json_dumps` does the same for
JSON, which escapes C0 controls by itself but leaves DEL and C1 raw.

Every place that prints or draws text it did not write itself goes through here (stdlib only: the engine and
the console both use it). Markup is the renderer's business: this module neither adds nor escapes any.
"""

from __future__ import annotations

import json
from typing import Any

#: C0 controls and DEL as the Unicode "control pictures" (U+2400–U+2421): `\x1b` → `␛`, `\r` → `␍`.
_PICTURES = {code: chr(0x2400 + code) for code in range(0x20)} | {0x7F: "\u2421"}
#: C1 controls (U+0080–U+009F) have no pictures: they show as their Python escape, `\x9b`.
_C1 = {code: f"\\x{code:02x}" for code in range(0x80, 0xA0)}

_SINGLE_LINE = str.maketrans(_PICTURES | _C1)
_MULTILINE = str.maketrans({k: v for k, v in (_PICTURES | _C1).items() if chr(k) not in "\n\t"})
#: JSON text: DEL and C1 as `\u` escapes (the only places they can occur are inside strings).
_JSON = str.maketrans({code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)})


def visible(text: str, *, multiline: bool = True) -> str:
    """`text` with every control character made visible; `multiline` keeps newlines and tabs (and reads a
    Windows line end as a newline), otherwise they show as `␊` and `␉` so the text stays on one line."""
    if multiline:
        return text.replace("\r\n", "\n").translate(_MULTILINE)
    return text.translate(_SINGLE_LINE)


def visible_line(text: object) -> str:
    """`str(text)` made visible and kept on one line: for table cells, titles, names and notifications."""
    return visible(str(text), multiline=False)


def visible_tree(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string in it, keys included, made visible:
    for a report that is shown, never used to open files."""
    if isinstance(value, str):
        return visible(value)
    if isinstance(value, dict):
        return {visible_tree(k): visible_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [visible_tree(v) for v in value]
    return value


def safe_json_dumps(obj: Any, **kwargs: Any) -> str:
    """`json.dumps(obj, ensure_ascii=False, ...)` with DEL and the C1 controls escaped as well, so the JSON
    printed to a terminal cannot drive it; it decodes to the same value."""
    return json.dumps(obj, ensure_ascii=False, **kwargs).translate(_JSON)
