"""Stylesheets and theme definitions: the only place with colours (data only).

`themes.toml` holds the colour themes (turned into `textual.theme.Theme` by `slmtui/ui/themes.py`);
the `.tcss` files hold the layout, using only the themes' variables.
"""

from pathlib import Path

THEMES_DIR = Path(__file__).resolve().parent
