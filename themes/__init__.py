"""Stylesheets and theme definitions: the only place with colours (data only)."""

from pathlib import Path

THEMES_DIR = Path(__file__).resolve().parent
