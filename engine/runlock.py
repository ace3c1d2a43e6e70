"""The engine's hold on its run folder: one engine per folder, and no engine without its folder.

The lock: the engine holds `RUN_DIR/engine.lock` for its whole life.

`python -m engine run` takes the lock (`flock`, exclusive, non-blocking) before it writes anything else to the
run folder and writes its pid into the file; the kernel drops the lock when the process ends, however it ends.
A second engine on the same folder (two resumes started at once) fails to take it and exits with
`LOCKED_EXIT`, saying which pid holds it. Under `torchrun` the launcher holds the lock for all its ranks.

The folder: a run folder (or its spec) deleted under a running engine (`rm -rf RUN`) stops the engine at its
next control poll (`RunFolderGone`), and it writes nothing more: an engine that recreated the folder would
train on invisible to `runs` and `stop`. Writes that make their parent folders go through `writing_into`,
which takes back what they recreated when the folder vanished under them.

Light on purpose (stdlib only): the CLI reads the holder's pid to say who has the run.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from engine.protocol import SPEC_FILE

LOCK_FILE = "engine.lock"
#: The exit status of an engine that found the run folder locked by another engine (EX_TEMPFAIL).
LOCKED_EXIT = 75


class RunLocked(Exception):
    """Another engine holds the run folder; one sentence naming its pid."""

    def __init__(self, run_dir: Path, pid: int | None) -> None:
        self.pid = pid
        super().__init__(locked_message(run_dir, pid))


class RunFolderGone(Exception):
    """The run folder or its spec was deleted while the engine ran."""

    def __init__(self, run_dir: Path) -> None:
        super().__init__(f"The run folder {run_dir} (or its {SPEC_FILE}) was deleted, so the engine stopped "
                         "without writing anything more.")


def run_folder_gone(run_dir: Path) -> bool:
    """Whether the run folder or its spec has disappeared."""
    return not (run_dir / SPEC_FILE).is_file()


@contextlib.contextmanager
def writing_into(run_dir: Path, *created: Path) -> Iterator[None]:
    """Around a write that creates `created` (paths under the run folder) through code that makes missing
    parent folders (`save_pretrained`, `mkdir(parents=True)`). Raises `RunFolderGone` before it when the
    folder is gone already; when the folder went away during it (it is missing, another folder stands in its
    place, or its spec went), takes back what the write recreated (the paths, then the folders left empty up
    to the run folder: `rmdir`, which removes nothing else) and raises `RunFolderGone`."""
    try:
        before = _folder_state(run_dir)
    except OSError:
        raise RunFolderGone(run_dir) from None

    def went() -> bool:
        try:
            now = _folder_state(run_dir)
        except OSError:
            return True
        return now[:2] != before[:2] or (before[2] and not now[2])

    try:
        yield
    finally:
        if went():
            _take_back(run_dir, created)
    if went():
        raise RunFolderGone(run_dir)


def _folder_state(run_dir: Path) -> tuple[int, int, bool]:
    """The folder's identity (device, inode) and whether its spec is there."""
    st = os.stat(run_dir)
    return st.st_dev, st.st_ino, (run_dir / SPEC_FILE).is_file()


def _take_back(run_dir: Path, created: tuple[Path, ...]) -> None:
    for path in created:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        folder = path.parent
        while folder.is_relative_to(run_dir):
            try:
                folder.rmdir()  # only an empty folder: one this engine recreated
            except OSError:
                break
            folder = folder.parent


def under_torchrun() -> bool:
    """Whether this process is one rank of a `torchrun` launch (its launcher holds the lock)."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def locked_message(run_dir: Path, pid: int | None) -> str:
    """The sentence a second engine (and the CLI that started it) says."""
    who = f"engine process {pid}" if pid else "another engine process"
    return (f"Run {run_dir.name} is already being trained by {who}, which holds {run_dir / LOCK_FILE}; "
            f"follow it with `slmtui attach {run_dir.name}` or stop it first.")


def lock_holder(run_dir: Path) -> int | None:
    """The pid written in the lock file (the engine that holds it, or held it last); None when unreadable."""
    try:
        text = (run_dir / LOCK_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class RunLock:
    """The exclusive lock on a run folder, held from `acquire()` until `release()` or the process ends."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.path = run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write this pid into the file; raises `RunLocked` when another process holds it."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(self.run_dir, lock_holder(self.run_dir)) from None
        except BaseException:
            os.close(fd)
            raise
        # the file is rewritten only under the lock, so a reader sees the holder's pid (or a moment of empty)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def fds(self) -> tuple[int, ...]:
        """The lock's descriptor, for a child that must hold the lock too (torchrun, which outlives a killed
        launcher while its ranks train)."""
        return () if self._fd is None else (self._fd,)

    def release(self) -> None:
        """Let go (idempotent); the file stays, a later engine takes it again."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


def process_alive(pid: int, created: object = None) -> bool:
    """Whether process `pid` runs and is the one started at `created` (a pid file's `create_time`; anything
    else is not checked), not a zombie."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if isinstance(created, int | float) and created and abs(proc.create_time() - created) > 1.0:
            return False  # the pid was reused by another process
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False
