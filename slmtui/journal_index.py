"""The journal's entries indexed for filtering as you type (headless; the journal screen holds one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slmtui.store import JournalEntry


@dataclass(frozen=True)
class JournalIndex:
    """Entries newest first, each with its lower-cased searchable text (built once per load, off the UI thread)."""

    entries: tuple[JournalEntry, ...]
    haystacks: tuple[str, ...]

    @classmethod
    def build(cls, oldest_first: Sequence[JournalEntry]) -> JournalIndex:
        """Index the store's entries (which come oldest first)."""
        entries = tuple(reversed(oldest_first))
        return cls(entries, tuple(f"{e.text}\n{e.kind}\n{e.run or ''}".lower() for e in entries))

    def filter(self, kind: str, text: str) -> tuple[JournalEntry, ...]:
        """The entries of `kind` ("" for all) whose text, kind or run contains `text` (any case)."""
        needle = text.strip().lower()
        if not kind and not needle:
            return self.entries
        return tuple(
            entry for entry, hay in zip(self.entries, self.haystacks, strict=True)
            if (not kind or entry.kind == kind) and needle in hay
        )
