"""How a data-parallel run that failed on one rank names that rank, whichever rank noticed first.

A rank other than 0 that ends badly (an exception, out of memory) leaves a failure file in the run folder
(`record_rank_failure`); rank 0, whose collective broke because of it, ends the run with that rank's reason
(`rank_failure`). A rank that ends without a word (killed, or crashed outside Python) leaves no file: rank 0 finds
it by its pid among the ranks on its machine (`silent_rank`). When rank 0 itself was killed, the launcher ends the
run after torchrun (`end_after_ranks`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from engine.runlock import process_alive
from engine.train.distributed import Dist

#: A rank other than 0 that ends badly says why in this file of the run folder, so the run's end can name it.
RANK_FAILURE_FILE = "rank-{rank}.failure.json"
#: How long rank 0, its collective broken, waits for the peer that broke it to be seen gone: a process's
#: connections close while it exits, a moment before the kernel marks it ended.
SILENT_RANK_WAIT_S = 3.0


def record_rank_failure(run_dir: Path, rank: int, status: str, message: str) -> None:
    """A rank other than 0 ended as `status`: leave why for rank 0 and the launcher (best effort)."""
    import contextlib

    from engine.protocol import write_json_atomic

    with contextlib.suppress(OSError):
        write_json_atomic(run_dir / RANK_FAILURE_FILE.format(rank=rank),
                          {"rank": rank, "status": status, "message": message})


def rank_failure(run_dir: Path) -> tuple[str, str] | None:
    """(status, sentence) of the first rank that left a failure, naming it; None when none did."""
    for path in sorted(run_dir.glob(RANK_FAILURE_FILE.format(rank="*"))):
        try:
            failure = json.loads(path.read_text(encoding="utf-8"))
            rank, status, message = int(failure["rank"]), str(failure["status"]), str(failure["message"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        what = f"ran out of memory {message}" if status == "oom" else f"failed: {message}"
        return ("oom" if status == "oom" else "failed", f"Rank {rank} {what.rstrip('.')}. The other ranks were stopped.")
    return None


def silent_rank(dist: Dist, step: int, wait_s: float = SILENT_RANK_WAIT_S) -> tuple[str, str] | None:
    """("failed", sentence naming it) for a rank on this machine whose process ended without a word (killed, or
    crashed outside Python), waiting up to `wait_s` for it to be seen gone; None when every peer here runs on."""
    peers = [(rank, pid) for rank, pid in enumerate(dist.pids) if rank != dist.rank and dist.on_this_machine(rank)]
    deadline = time.monotonic() + wait_s
    while peers:
        gone = next((rank for rank, pid in peers if not process_alive(pid)), None)
        if gone is not None:
            return "failed", (f"Rank {gone} ended without a word at step {step + 1} (killed, or it crashed outside "
                              "Python). The other ranks were stopped.")
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return None


def end_after_ranks(run_dir: Path, exit_code: int) -> None:
    """The launcher's last word after torchrun: when the ranks ended without rank 0 saying how (it was killed
    while a peer had failed), end the run `failed` (or `oom`), naming the rank that failed."""
    from engine.protocol import SUMMARY_FILE, read_json
    from engine.train.reporting import Reporter

    summary = read_json(run_dir / SUMMARY_FILE) or {}
    if exit_code == 0 or summary.get("status") != "running":
        return
    status, message = rank_failure(run_dir) or (
        "failed", f"A training process ended with exit code {exit_code} before rank 0 could say how the run "
                  "ended (see engine.log); the other ranks were stopped.")
    reporter = Reporter(run_dir, run_dir.name)
    reporter.continue_summary()
    reporter.log(message, level="error")
    reporter.emit("finished", status=status, summary={"message": message, "steps": reporter.summary["step"],
                                                      "total_steps": reporter.summary["total_steps"]})
    reporter.close()
