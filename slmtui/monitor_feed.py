"""The monitor's feed: follows run folders on one service thread that knows nothing of any UI.

For each watched run it reads `summary.json` first (shown at once), then the event history in chunks, then
follows the growing file, folding everything into the run's bounded `RunHistory`. After each poll that
changed a run it calls `on_update(run_id)`; the console turns that into a message that coalesces, so a flood
of events costs one redraw per frame, never lost data. A run whose engine died without a `finished` event is
marked as the summary says it ended, else crashed (checked about once a second).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.protocol import EVENTS_FILE, EventFollower
from slmtui.monitor_data import RunHistory
from slmtui.runs import ended_without_event, engine_alive

#: Bytes read per poll of one run: a 1M-step history (~250 MB) is read in chunks, with redraws between.
CHUNK_BYTES = 4 << 20


@dataclass
class _Watched:
    history: RunHistory
    follower: EventFollower
    summary_read: bool = False
    last_liveness: float = 0.0


@dataclass
class MonitorFeed:
    """Follows any number of run folders; `run()` is the loop for a worker thread, `poll()` one pass."""

    on_update: Callable[[str], None] = lambda _run_id: None
    poll_s: float = 0.1
    liveness_s: float = 1.0
    _runs: dict[str, _Watched] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)

    def watch(self, run_dir: Path) -> RunHistory:
        """Follow `run_dir` (from its first event) unless already followed; returns its history."""
        with self._lock:
            watched = self._runs.get(run_dir.name)
            if watched is None:
                history = RunHistory(run_dir.name, run_dir)
                watched = _Watched(history, EventFollower(run_dir / EVENTS_FILE))
                self._runs[run_dir.name] = watched
                self._wake.set()
            return watched.history

    def history(self, run_id: str) -> RunHistory | None:
        """The history of a watched run."""
        with self._lock:
            watched = self._runs.get(run_id)
        return watched.history if watched else None

    def watched(self) -> list[str]:
        """Ids of the runs followed."""
        with self._lock:
            return list(self._runs)

    def poll(self) -> bool:
        """One pass over every watched run; True when more is waiting to be read at once."""
        with self._lock:
            runs = list(self._runs.values())
        busy = False
        for watched in runs:
            busy |= self._poll_run(watched)
        return busy

    def _poll_run(self, watched: _Watched) -> bool:
        history = watched.history
        if not watched.summary_read:
            watched.summary_read = True
            history.read_summary()
            self.on_update(history.run_id)
            return True
        events = watched.follower.poll(CHUNK_BYTES)
        if events:
            history.fold(events)
            more = self._has_more(watched)
            if not more and not history.loaded:
                history.mark_loaded()
            self.on_update(history.run_id)
            return more
        changed = False
        if not history.loaded:
            history.mark_loaded()
            changed = True
        if history.finished is None and history.status == "running":
            now = time.monotonic()
            if now - watched.last_liveness >= self.liveness_s:
                watched.last_liveness = now
                if not engine_alive(history.run_dir):
                    late = watched.follower.poll(CHUNK_BYTES)
                    if late:
                        history.fold(late)
                    if history.finished is None:  # the summary may know how it ended (events.jsonl deleted)
                        ended = ended_without_event(history.run_dir)
                        history.mark_ended(ended["status"], ended["summary"]["message"])
                    changed = True
        if changed:
            self.on_update(history.run_id)
        return False

    @staticmethod
    def _has_more(watched: _Watched) -> bool:
        try:
            return (watched.history.run_dir / EVENTS_FILE).stat().st_size > watched.follower.offset
        except OSError:
            return False

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set: at once while history is waiting, else every `poll_s`."""
        while not stop.is_set():
            if self.poll():
                continue
            self._wake.wait(self.poll_s)
            self._wake.clear()
