"""Where slmtui keeps things: HOME (the store, the demo, prepared data) and the runs folder.

Shared by the console and the engine (stdlib and platformdirs only), so both agree on every path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

HOME_ENV = "SLMTUI_HOME"
RUNS_ENV = "SLMTUI_RUNS"


class HomeError(Exception):
    """HOME or the runs folder cannot be used (a file in its place, a read-only disk), as one sentence."""


def _owner_only_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise HomeError(f"{exc.filename or path} is a file, not a folder, so slmtui cannot keep its things in "
                        f"{path}; move the file aside or set {HOME_ENV} (or {RUNS_ENV}) to a folder.") from None
    except OSError as exc:
        raise HomeError(f"slmtui cannot create its folder {path} ({exc.strerror or exc}); make that place "
                        f"writable or set {HOME_ENV} to a writable folder.") from None
    with contextlib.suppress(OSError):  # a folder we do not own (a shared runs disk): leave its mode alone
        path.chmod(0o700)
    return path


def special_file(path: Path | str) -> str | None:
    """What `path` is when it exists but is neither a regular file nor a folder (a named pipe, a device, a
    symbolic link that loops), in words; None otherwise."""
    try:
        mode = os.stat(Path(path).expanduser()).st_mode
    except OSError as exc:
        return "a symbolic link that loops back on itself" if exc.errno == errno.ELOOP else None
    for test, words in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
                        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return words
    return None


def slmtui_home(create: bool = True) -> Path:
    """HOME: `$SLMTUI_HOME`, else the platform's user data directory; created owner-only."""
    env = os.environ.get(HOME_ENV)
    if env:
        home = Path(env).expanduser()
    else:
        from platformdirs import user_data_dir

        home = Path(user_data_dir("slmtui", appauthor=False))
    return _owner_only_dir(home) if create else home


def runs_dir(home: Path | None = None, create: bool = True) -> Path:
    """The runs folder: `$SLMTUI_RUNS` (a large local disk, say), else `HOME/runs`."""
    env = os.environ.get(RUNS_ENV)
    path = Path(env).expanduser() if env else (home or slmtui_home(create)) / "runs"
    return _owner_only_dir(path) if create else path


def demo_dir(home: Path | None = None) -> Path:
    """Where `slmtui demo` builds its dataset and tiny model."""
    return (home or slmtui_home()) / "demo"


def cache_dir(home: Path | None = None) -> Path:
    """Prepared-data cache, keyed by fingerprint."""
    return _owner_only_dir((home or slmtui_home()) / "cache")


def evals_dir(home: Path | None = None) -> Path:
    """Quick evaluations: `HOME/evals/<eval-id>/` (events.jsonl, summary.json), one folder per model and data."""
    return _owner_only_dir((home or slmtui_home()) / "evals")


def new_eval_id(model: str, root: Path | None = None) -> str:
    """A fresh evaluation id, `YYYYMMDD-HHMMSS-<model slug>`, its folder under `root` claimed at once."""
    import time

    from engine.spec import slug

    root = root or evals_dir()
    name = Path(model.rstrip("/")).name or model
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(name) or 'model'}"
    eval_id, n = base, 1
    while True:
        try:
            (root / eval_id).mkdir(mode=0o700)
            return eval_id
        except FileExistsError:
            n += 1
            eval_id = f"{base}-{n}"
