"""A full disk (or a run folder that became unwritable) ends a run with a clear reason instead of a crash.

The run folder holds a small reserve file from the start; when a write fails for lack of space, the engine
deletes the reserve and any half-written checkpoint, which leaves room to write the `finished` event and the
summary that say why. Complete checkpoints and events already written are left as they are.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

RESERVE_FILE = ".space-reserve"
#: Enough for the last log and `finished` events, the summary and engine.log's last lines.
RESERVE_BYTES = 256 * 1024
_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNWRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)
_FULL_TEXTS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), f"os error {errno.ENOSPC})",
               f"os error {errno.EDQUOT})")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) is a write refused for lack of space or quota.

    Libraries with native writers (safetensors) raise their own error class carrying the OS message, so the
    message counts too.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return True
        if any(text in str(seen) for text in _FULL_TEXTS):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _refused_write(exc: BaseException, run_dir: Path) -> OSError | None:
    """The error in `exc`'s chain (itself or one it was raised from) that refused a write into `run_dir` for
    its permissions or a read-only filesystem; one naming no file counts too (a library that dropped it)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _UNWRITABLE:
            name = seen.filename
            if name is None or Path(os.fsdecode(name)).is_relative_to(run_dir):
                return seen
        seen = seen.__cause__ or seen.__context__
    return None


def is_unwritable(exc: BaseException, run_dir: Path) -> bool:
    """Whether an exception is the run folder refusing a write (made unwritable, or its filesystem remounted
    read-only, mid-run). A model or dataset that cannot be read is not this."""
    return _refused_write(exc, run_dir) is not None


def unwritable_message(run_dir: Path, exc: BaseException) -> str:
    """One sentence: the run folder became unwritable; what to do."""
    refused = _refused_write(exc, run_dir)
    reason = (refused.strerror if refused is not None and refused.strerror else "permission denied").lower()
    return f"The run folder {run_dir} became unwritable ({reason}), so the run stopped; fix its permissions and resume it."


def disk_full_message(run_dir: Path) -> str:
    """One sentence: what happened and what to do."""
    return (f"The disk holding {run_dir} is full, so the run stopped; free some space (or lower "
            "train.keep_checkpoints) and resume it.")


class SpaceReserve:
    """A file of `RESERVE_BYTES` in the run folder, given back when the disk fills up or the run ends."""

    def __init__(self, run_dir: Path, create: bool = True) -> None:
        """`create = False` for processes that write nothing (the other ranks of a data-parallel run)."""
        self.path = run_dir / RESERVE_FILE
        self.created = create
        if not create:
            return
        # no room even for this: the run will say so at its first write
        with contextlib.suppress(OSError), open(self.path, "wb") as fh:
            fh.write(b"\0" * RESERVE_BYTES)
            fh.flush()
            os.fsync(fh.fileno())  # allocate the blocks now, not when the disk is already full

    def release(self) -> None:
        """Delete the reserve (idempotent)."""
        if not self.created:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()


def drop_partial_checkpoints(run_dir: Path) -> None:
    """Delete checkpoint folders a failed save left half-written (`step-N.tmp`); complete ones stay."""
    for partial in (run_dir / "checkpoints").glob("step-*.tmp"):
        shutil.rmtree(partial, ignore_errors=True)
