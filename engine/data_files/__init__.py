"""Data shipped with the engine: the first-name list used by `engine.pii` (a package so it is installed)."""
