"""The console's looks, as data: `themes.toml` (colour themes) and `.tcss` stylesheets. The only place with colours."""
