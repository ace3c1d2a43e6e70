"""Where slmtui keeps things (the rules live in `engine.paths`, shared with the engine)."""

from engine.paths import HOME_ENV, RUNS_ENV, cache_dir, demo_dir, runs_dir, slmtui_home

__all__ = ["HOME_ENV", "RUNS_ENV", "cache_dir", "demo_dir", "runs_dir", "slmtui_home"]
