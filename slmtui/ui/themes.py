"""Themes as data: `themes/themes.toml` turned into `textual.theme.Theme` objects, and stylesheet paths."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from functools import cache
from pathlib import Path
from typing import Any

from textual.theme import Theme

_THEME_FIELDS = {f.name for f in fields(Theme)} - {"name"}


def themes_dir() -> Path:
    """The `themes/` package folder, where every stylesheet and theme definition lives."""
    from themes import THEMES_DIR

    return THEMES_DIR


def stylesheet(name: str) -> Path:
    """The path of a stylesheet in `themes/`, for `CSS_PATH` (e.g. `stylesheet("journal.tcss")`)."""
    return themes_dir() / name


def parse_themes(data: dict[str, Any]) -> list[Theme]:
    """Turn parsed `themes.toml` tables into themes, in file order; unknown keys are an error."""
    themes: list[Theme] = []
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ValueError(f"Theme {name!r} in themes.toml must be a table.")
        unknown = set(table) - _THEME_FIELDS
        if unknown:
            raise ValueError(f"Theme {name!r} has unknown keys: {', '.join(sorted(unknown))}.")
        if "primary" not in table:
            raise ValueError(f"Theme {name!r} needs a primary colour.")
        themes.append(Theme(name=name, **table))
    if not themes:
        raise ValueError("themes.toml defines no theme.")
    return themes


@cache
def load_themes() -> tuple[Theme, ...]:
    """The console's themes from `themes/themes.toml`; the first one is the default."""
    with (themes_dir() / "themes.toml").open("rb") as fh:
        return tuple(parse_themes(tomllib.load(fh)))


def default_theme_name() -> str:
    """The theme used when the store remembers none (the first in `themes.toml`)."""
    return load_themes()[0].name


def next_theme_name(current: str) -> str:
    """The theme after `current` in file order, wrapping round (the theme-switch key)."""
    names = [theme.name for theme in load_themes()]
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]
