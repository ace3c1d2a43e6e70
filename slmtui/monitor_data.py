"""What the monitor knows about one run, folded from its events into bounded memory.

Each metric is a `Series` (`slmtui.series`), so a 1,000,000-step run costs what a 2,000-step run does.
`RunHistory` folds events (thread-safe: the feed thread writes, the UI reads) and hands out frozen `RunView` snapshots for
rendering. Headless: no textual, no ML stack.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from engine.protocol import SUMMARY_FILE
from slmtui.series import Point, Series


@dataclass(frozen=True)
class Eta:
    """Seconds left: the likely figure and a low-high range; `source` is "engine" or "monitor"; `at` is when
    (wall time) the estimate held, so it can be aged while no event comes."""

    seconds: float
    low: float
    high: float
    source: str
    at: float | None = None

    def at_time(self, now: float) -> Eta:
        """The estimate at `now`: the time since it was made is counted off (never below zero). A stalled run
        thus shows its ETA running down beside the "no event for ..." line, not a figure frozen at the last
        event."""
        if self.at is None:
            return self
        gone = max(0.0, now - self.at)
        return replace(self, seconds=max(0.0, self.seconds - gone), low=max(0.0, self.low - gone),
                       high=max(0.0, self.high - gone), at=max(now, self.at))


@dataclass(frozen=True)
class RunView:
    """A frozen snapshot of a run for one redraw."""

    run_id: str
    status: str
    step: int
    total_steps: int | None
    started: dict[str, Any] | None
    latest: dict[str, Any]
    loss: tuple[Point, ...]
    val_loss: tuple[Point, ...]
    lr: list[float]
    grad_norm: list[float]
    tokens_per_s: list[float]
    last_eval: dict[str, Any] | None
    oom: dict[str, Any] | None
    finished: dict[str, Any] | None
    eta: Eta | None
    events: int
    loaded: bool
    last_event_t: float | None
    message: str | None


EMPTY_VIEW = RunView("", "", 0, None, None, {}, (), (), [], [], [], None, None, None, None, 0, False, None, None)
SPARK_POINTS = 120
_TIMING_WINDOW = 240


@dataclass
class RunHistory:
    """Everything the monitor keeps about one run (bounded), folded from its summary and events."""

    run_id: str
    run_dir: Path
    status: str = "running"
    step: int = 0
    total_steps: int | None = None
    started: dict[str, Any] | None = None
    latest: dict[str, Any] = field(default_factory=dict)
    last_eval: dict[str, Any] | None = None
    oom: dict[str, Any] | None = None
    finished: dict[str, Any] | None = None
    message: str | None = None
    events: int = 0
    loaded: bool = False
    last_event_t: float | None = None
    summary_eta: dict[str, Any] = field(default_factory=dict)
    loss: Series = field(default_factory=Series)
    val_loss: Series = field(default_factory=Series)
    lr: Series = field(default_factory=Series)
    grad_norm: Series = field(default_factory=Series)
    tokens_per_s: Series = field(default_factory=Series)
    _timing: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=_TIMING_WINDOW))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def read_summary(self) -> None:
        """Fold `summary.json` (cheap: the monitor shows it before the history is read)."""
        try:
            summary = json.loads((self.run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if not isinstance(summary, dict):
            return
        with self._lock:
            if self.events:  # the events already say more than the summary
                return
            self.step = int(summary.get("step") or 0)
            self.total_steps = summary.get("total_steps")
            self.latest = dict(summary.get("latest") or {})
            if isinstance(summary.get("updated"), int | float):
                self.latest.setdefault("t", summary["updated"])  # when its figures (and ETA) held
            self.summary_eta = {k: summary[k] for k in ("eta_s", "eta_low_s", "eta_high_s") if k in summary}
            if "updated" in summary:
                self.summary_eta["t"] = summary["updated"]
            if summary.get("status") not in (None, "running"):
                self.status = str(summary["status"])
            self.message = summary.get("message")

    def fold(self, events: list[dict[str, Any]]) -> None:
        """Fold a batch of events, in order."""
        with self._lock:
            for event in events:
                self._fold_one(event)

    def _fold_one(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        self.events += 1
        t = event.get("t")
        if isinstance(t, int | float) and t > 0:
            self.last_event_t = float(t)
        if kind == "metrics":
            step = event.get("step")
            if not isinstance(step, int):
                return
            self.step = step
            self.latest = event
            for name in ("loss", "lr", "grad_norm", "tokens_per_s"):
                value = event.get(name)
                if isinstance(value, int | float):
                    getattr(self, name).add(step, float(value))
            if self.last_event_t is not None:
                self._timing.append((self.last_event_t, step))
        elif kind == "eval":
            value, step = event.get("val_loss"), event.get("step")
            if isinstance(value, int | float) and isinstance(step, int):
                self.val_loss.add(step, float(value))
            self.last_eval = event
        elif kind == "started":
            self.started = {k: v for k, v in event.items() if k not in ("env", "data")}
            if isinstance(event.get("total_steps"), int):
                self.total_steps = event["total_steps"]
        elif kind == "oom":
            self.oom = event
        elif kind == "finished":
            self.finished = event
            self.status = str(event.get("status") or "failed")
            self.message = (event.get("summary") or {}).get("message")

    def mark_ended(self, status: str, message: str | None) -> None:
        """The engine is gone without a `finished` event in the file read; `status` is what the run's other
        sources say (its summary), else `crashed`."""
        with self._lock:
            if self.finished is None:
                self.status, self.message = status, message

    def mark_loaded(self) -> None:
        """The whole history up to now has been read."""
        with self._lock:
            self.loaded = True

    def eta(self) -> Eta | None:
        """The engine's ETA when it writes one, else one from the recent steps per second (10th-90th percentile)."""
        if self.status != "running":
            return None
        source = self.latest if "eta_s" in self.latest else self.summary_eta
        if isinstance(source.get("eta_s"), int | float):
            eta = float(source["eta_s"])
            low, high = source.get("eta_low_s", eta), source.get("eta_high_s", eta)
            at = source.get("t")  # the metrics event's time, or the summary's
            return Eta(eta, float(low if low is not None else eta), float(high if high is not None else eta), "engine",
                       float(at) if isinstance(at, int | float) and at > 0 else None)
        if not self.total_steps or len(self._timing) < 3:
            return None
        left = max(self.total_steps - self.step, 0)
        timing = list(self._timing)
        chunk = max(1, len(timing) // 8)
        rates = []
        for i in range(0, len(timing) - chunk, chunk):
            (t0, s0), (t1, s1) = timing[i], timing[i + chunk]
            if t1 > t0 and s1 > s0:
                rates.append((t1 - t0) / (s1 - s0))
        if not rates:
            return None
        rates.sort()
        mid = statistics.median(rates)
        low, high = rates[int(0.1 * (len(rates) - 1))], rates[math.ceil(0.9 * (len(rates) - 1))]
        return Eta(left * mid, left * low, left * high, "monitor", timing[-1][0])

    def view(self) -> RunView:
        """A frozen copy for rendering."""
        with self._lock:
            return RunView(
                run_id=self.run_id, status=self.status, step=self.step, total_steps=self.total_steps,
                started=self.started, latest=dict(self.latest), loss=self.loss.points(),
                val_loss=self.val_loss.points(), lr=self.lr.tail(SPARK_POINTS),
                grad_norm=self.grad_norm.tail(SPARK_POINTS), tokens_per_s=self.tokens_per_s.tail(SPARK_POINTS),
                last_eval=self.last_eval, oom=self.oom, finished=self.finished, eta=self.eta(),
                events=self.events, loaded=self.loaded, last_event_t=self.last_event_t, message=self.message,
            )


def smooth(values: list[float], weight: float) -> list[float]:
    """TensorBoard-style exponential moving average, debiased at the start; `weight` 0 leaves values alone."""
    if weight <= 0 or not values:
        return list(values)
    out, avg = [], 0.0
    for i, value in enumerate(values, 1):
        avg = avg * weight + (1 - weight) * value
        out.append(avg / (1 - weight**i))
    return out


def now() -> float:
    """Wall-clock time (a seam for tests)."""
    return time.time()
