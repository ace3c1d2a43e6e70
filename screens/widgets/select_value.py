"""Telling a Select's current choice from a late announcement of one it has since left."""

from __future__ import annotations

from textual.widgets import Select


def still_chosen(event: Select.Changed) -> bool:
    """Whether the Select still holds the value `event` announces.

    A Select announces its value from its own message queue, so the announcement reaches the screen behind any
    message posted to the screen directly. Its first value, announced on mount, can arrive after the screen has
    already set it to something else (from a GPU sample, from saved settings): acting on it would take the screen
    back to a value no longer shown.
    """
    return bool(event.value == event.select.value)
