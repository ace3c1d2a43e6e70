"""The journal as Markdown (the console's export; stdlib only, so the CLI can use it too)."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from slmtui.store import JournalEntry


def _when(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp))


def journal_markdown(entries: Sequence[JournalEntry], *, title: str = "Journal", scope: str = "") -> str:
    """Entries (in the order given) as a Markdown document: one section per entry, its text verbatim."""
    count = f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}"
    lines = [f"# {title}", "", f"_Exported {_when(time.time())} · {count}{f' · {scope}' if scope else ''}_", ""]
    for entry in entries:
        heading = [_when(entry.created), entry.kind]
        if entry.run:
            heading.append(f"run `{entry.run}`")
        if entry.step is not None:
            heading.append(f"step {entry.step}")
        lines += [f"## {' · '.join(heading)}", "", entry.text.strip(), ""]
    return "\n".join(lines)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file and a rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
