"""Everything a run tells the world: events, `summary.json`, and the trackers of `report_to` (`trackers.py`)."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

from engine.protocol import EVENTS_FILE, SUMMARY_FILE, EventWriter, encode, make_event, write_json_atomic
from engine.safe_text import visible
from engine.train.trackers import MIRRORS, Mirror

SUMMARY_INTERVAL_S = 2.0
_SUMMARY_METRICS = ("loss", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "mem_peak_gib", "epoch")
#: The figures of a `metrics` event copied to the trackers, as `train/NAME`.
_MIRRORED_METRICS = ("loss", "lr", "grad_norm", "tokens_per_s", "epoch")
_ETA_FIELDS = ("eta_s", "eta_low_s", "eta_high_s")
#: What a resumed run keeps of its summary: its start, its bests and where it got to.
_KEPT_ON_RESUME = ("started", "total_steps", "step", "latest", "best", "latest_eval", "last_checkpoint", "pilot")


class Reporter:
    """Writes a run's events and keeps its `summary.json` current (atomically, at most every 2 s while training).

    With `write = False` (the other ranks of a data-parallel run) it keeps the summary in memory and writes
    nothing, so rank 0 alone speaks for the run."""

    def __init__(self, run_dir: Path, run_id: str, write: bool = True) -> None:
        self.run_dir = run_dir
        self.run_id = run_id
        self.write = write
        self.events = EventWriter(run_dir / EVENTS_FILE, run_id) if write else None
        self._seq = 0
        self.mirrors: list[Mirror] = []
        self.summary: dict[str, Any] = {
            "run": run_id,
            "status": "running",
            "pid": os.getpid(),
            "step": 0,
            "total_steps": None,
            "started": time.time(),
            "ended": None,
            "latest": {},
            "best": {},
            "latest_eval": None,
        }
        self._written = 0.0

    def continue_summary(self) -> None:
        """A resumed run carries on from its previous `summary.json` (start time, bests, latest figures)."""
        try:
            previous = json.loads((self.run_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(previous, dict):
            self.summary.update({k: previous[k] for k in _KEPT_ON_RESUME if k in previous})

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Write one event, fold it into the summary, and rewrite the summary when it is due."""
        if self.events is None:
            event = make_event(type, run=self.run_id, seq=self._seq, **fields)
            self._seq += 1
            self._fold(event)
            return event
        event = self.events.emit(type, **fields)
        self._fold(event)
        if type == "metrics":
            self._mirror({f"train/{k}": fields[k] for k in _MIRRORED_METRICS
                          if isinstance(fields.get(k), int | float)}, fields["step"])
        elif type == "eval":
            self._mirror({f"eval/{k}": fields[k] for k in ("val_loss", "perplexity")
                          if isinstance(fields.get(k), int | float)}, fields["step"])
        now = time.monotonic()
        if type != "metrics" or now - self._written >= SUMMARY_INTERVAL_S:
            self.write_summary()
        return event

    def _mirror(self, values: dict[str, float], step: int) -> None:
        """Copy figures to each tracker; one that raises is dropped with a warning, and training goes on."""
        for mirror in list(self.mirrors):
            try:
                mirror.log(values, step)
            except Exception as exc:
                self.mirrors.remove(mirror)
                self.log(f"report_to {mirror.name!r} stopped at step {step}: it failed ({_brief(exc)}); training goes on "
                         f"without it.", level="warning")
                try:
                    mirror.close("failed")
                except Exception as close_exc:  # already broken: its close may fail too
                    print(f"[warning] closing {mirror.name} failed: {close_exc}", flush=True)

    def log(self, text: str, level: str = "info") -> None:
        """A human sentence for the event stream (and engine.log)."""
        if self.write:
            print(f"[{level}] {visible(text)}", flush=True)
        self.emit("log", level=level, text=text)

    def _fold(self, event: dict[str, Any]) -> None:
        s = self.summary
        kind = event["type"]
        if kind == "metrics":
            s["step"] = event["step"]
            s["latest"] = {k: event.get(k) for k in ("step", *_SUMMARY_METRICS, *_ETA_FIELDS)}
            s.update({k: event.get(k) for k in _ETA_FIELDS})
            loss = event.get("loss")
            if isinstance(loss, float) and not math.isnan(loss) and loss < s["best"].get("loss", float("inf")):
                s["best"]["loss"], s["best"]["loss_step"] = loss, event["step"]
        elif kind == "eval":
            s["latest_eval"] = {"step": event["step"], "val_loss": event["val_loss"], "perplexity": event["perplexity"]}
            s["latest"]["val_loss"] = event["val_loss"]
            val = event["val_loss"]
            if isinstance(val, float) and not math.isnan(val) and val < s["best"].get("val_loss", float("inf")):
                s["best"]["val_loss"], s["best"]["val_step"] = val, event["step"]
        elif kind == "checkpoint":
            key = "output" if event.get("final") else "last_checkpoint"
            s[key] = {"step": event["step"], "path": event["path"]}
        elif kind == "started":
            s["total_steps"] = event.get("total_steps")
            s["precision"], s["device"] = event.get("precision"), event.get("device")
        elif kind == "eta":
            s["pilot_eta"] = {k: event.get(k) for k in (*_ETA_FIELDS, "total_steps", "total_tokens")}
        elif kind == "finished":
            s["status"], s["ended"] = event["status"], event["t"]
            s.update({k: 0.0 if event["status"] == "completed" else None for k in _ETA_FIELDS})
            s["message"] = event.get("summary", {}).get("message")

    def write_summary(self, durable: bool = False) -> None:
        """Rewrite `summary.json` now (atomic rename; fsync'd only when `durable`, as at the end: an fsync
        per rewrite would stall the loop for milliseconds on a busy disk)."""
        self.summary["updated"] = time.time()
        path = self.run_dir / SUMMARY_FILE
        if durable:
            write_json_atomic(path, self.summary)
        else:
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(encode(self.summary), encoding="utf-8")  # encode() writes NaN as null
            os.replace(tmp, path)
        self._written = time.monotonic()

    def close(self) -> None:
        """Close the mirrors, write the summary a last time (durably) and close the event file, even when
        that summary write fails (it raises after the file is closed)."""
        for mirror in self.mirrors:
            try:
                mirror.close(str(self.summary["status"]))
            except Exception as exc:  # a mirror's failure never fails the run
                print(f"[warning] closing {mirror.name} failed: {exc}", flush=True)
        if self.events is not None:
            try:
                self.write_summary(durable=True)
            finally:
                self.events.close()

    def abandon(self) -> None:
        """Close the event file without writing anything (the run folder is gone)."""
        if self.events is not None:
            self.events.close()


def open_mirrors(reporter: Reporter, names: list[str], config: dict[str, Any]) -> None:
    """Attach the trackers of `report_to` that are installed; warn (and carry on) for the others. Only the
    rank that writes the run's events reports (one tracker run per slmtui run)."""
    if not reporter.write:
        return
    for name in names:
        try:
            reporter.mirrors.append(MIRRORS[name](reporter.run_dir, reporter.run_id, config))
        except ImportError as exc:
            reporter.log(f"report_to {name!r} is skipped: its package is not installed ({exc.name}); "
                         f"install it (pip install {exc.name}) to mirror metrics there.", level="warning")
        except Exception as exc:  # a tracker that fails to start (no login, no server) must not stop training
            reporter.log(f"report_to {name!r} is skipped: it failed to start ({_brief(exc)}).",
                         level="warning")


def _brief(exc: BaseException) -> str:
    """A tracker's error as one short line (some write paragraphs)."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return lines[0][:300]
