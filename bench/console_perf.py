"""The monitor's speed: keeping up with 1,000 events/s, memory over a 1,000,000-step run, first paint.

    python bench/console_perf.py [--only follow,memory,paint] [--rate 1000] [--seconds 10]
                                 [--steps 1000000] [--runs 3] [--json]

follow: a writer process appends `metrics` events at `--rate` per second for `--seconds` to a run folder that
        reads as running; the console runs headless (120 × 36) on the Monitor. At every repaint the lag is the
        wall-clock time since the displayed step's event was written; also the repaints per second, the
        console's CPU share, and how long after the writer's last event the screen showed it.
memory: a finished run of `--steps` steps (one `metrics` event each, an `eval` every 1,000) is opened in the
        Monitor; the process's RSS is sampled while the history is read, and compared with a 10,000-step run.
paint:  `python -m slmtui` in tmux (100 × 30) on a HOME holding the big run; the key 5 is sent at first
        paint; times to first paint, to the Monitor showing the summary (the step count), and to the whole
        history drawn. Uses bench/startup.py's tmux helpers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from startup import _summary, _tmux  # noqa: E402

RUN_ID = "20261126-090000-bench"

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from engine.protocol import EventWriter
    run_dir, rate, seconds = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    total = int(rate * seconds)
    with EventWriter(run_dir / "events.jsonl", run_dir.name) as w:
        w.emit("started", total_steps=total, precision="fp32", device="cpu")
        print("ready", flush=True)
        sys.stdin.readline()
        t0, step = time.time(), 0
        while step < total:
            due = min(total, int((time.time() - t0) * rate))
            while step < due:
                step += 1
                w.emit("metrics", step=step, loss=2 + 3 / (1 + step / 500), lr=2e-4, grad_norm=0.5,
                       tokens_per_s=12000.0, samples_per_s=100.0)
            time.sleep(0.001)
        print(time.time() - t0, flush=True)
""")


def _run_folder(home: Path, pid: int) -> Path:
    run_dir = home / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "bench"\n')
    proc = psutil.Process(pid)
    (run_dir / "engine.pid").write_text(json.dumps({"pid": pid, "create_time": proc.create_time()}))
    return run_dir


def follow(rate: float, seconds: float) -> dict[str, Any]:
    """Lag between an event written and its step on screen, at `rate` events per second."""
    from screens.monitor import MonitorScreen
    from slmtui.app import SlmtuiApp

    home = Path(tempfile.mkdtemp(prefix="slmtui-perf-"))
    run_dir = home / "runs" / RUN_ID
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "bench"\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir), str(rate), str(seconds)], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdin is not None
    writer.stdout.readline()
    created = psutil.Process(writer.pid).create_time()
    (run_dir / "engine.pid").write_text(json.dumps({"pid": writer.pid, "create_time": created}))
    lags: list[float] = []
    repaints: list[float] = []
    original = MonitorScreen._repaint

    def measured(screen: MonitorScreen) -> None:
        original(screen)
        t = screen.view.latest.get("t")
        if isinstance(t, float):
            now = time.time()
            repaints.append(now)
            lags.append(now - t)

    MonitorScreen._repaint = measured  # type: ignore[method-assign]
    total = int(rate * seconds)
    me = psutil.Process()
    result: dict[str, Any] = {}

    async def drive() -> None:
        app = SlmtuiApp(home=home, start_screen="Monitor")
        async with app.run_test(size=(120, 36)) as pilot:
            while not (isinstance(app.screen, MonitorScreen) and app.screen.view.run_id == RUN_ID):
                await pilot.pause(0.02)
            screen = app.screen
            cpu0, wall0 = me.cpu_times(), time.perf_counter()
            writer.stdin.write("go\n")  # type: ignore[union-attr]
            writer.stdin.flush()  # type: ignore[union-attr]
            while writer.poll() is None:
                await pilot.pause(0.05)
            done = time.time()
            while screen.view.step < total:
                await pilot.pause(0.01)
            result["caught_up_s"] = round(time.time() - done, 3)
            cpu1, wall1 = me.cpu_times(), time.perf_counter()
            busy = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (wall1 - wall0)
            result["console_cpu_share"] = round(busy, 3)
            result["events_folded"] = screen.view.events

    try:
        asyncio.run(drive())
    finally:
        MonitorScreen._repaint = original  # type: ignore[method-assign]
        writer.wait(5)
        shutil.rmtree(home, ignore_errors=True)
    steady = lags[len(lags) // 10:]  # leave out the first tenth (screen and feed warming up)
    span = repaints[-1] - repaints[0] if len(repaints) > 1 else 1.0
    steady.sort()
    return {"rate_per_s": rate, "seconds": seconds, "events": total, **result,
            "repaints_per_s": round(len(repaints) / span, 1),
            "lag_ms": {"median": round(1000 * statistics.median(steady), 1),
                       "p95": round(1000 * steady[int(0.95 * (len(steady) - 1))], 1),
                       "max": round(1000 * steady[-1], 1)}}


def write_big_run(home: Path, steps: int, run_id: str = RUN_ID) -> Path:
    """A finished run of `steps` metrics events (written as text lines, fast), an eval every 1,000 steps."""
    run_dir = home / "runs" / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "spec.toml").write_text('name = "bench"\n')
    (run_dir / "engine.pid").write_text(json.dumps({"pid": 2**22 + 7, "create_time": 1.0}))
    t0, seq = 1_795_000_000.0, 0
    with open(run_dir / "events.jsonl", "w") as fh:
        fh.write(json.dumps({"v": 1, "type": "started", "seq": 0, "t": t0, "run": run_id, "total_steps": steps,
                             "precision": "bf16", "device": "cuda:0"}) + "\n")
        for step in range(1, steps + 1):
            seq += 1
            fh.write(f'{{"v":1,"type":"metrics","seq":{seq},"t":{t0 + step * 0.1},"run":"{run_id}","step":{step},'
                     f'"epoch":{step / steps:.4f},"loss":{2 + 3 / (1 + step / 5000) + (step % 17) / 100:.5f},'
                     f'"lr":0.0002,"grad_norm":{0.5 + (step % 11) / 20:.3f},"tokens_per_s":{12000 + step % 97},'
                     f'"samples_per_s":100.0,"mem_allocated_gib":10.5,"mem_reserved_gib":12.0,'
                     f'"mem_peak_gib":12.5}}\n')
            if step % 1000 == 0:
                seq += 1
                fh.write(json.dumps({"v": 1, "type": "eval", "seq": seq, "t": t0 + step * 0.1, "run": run_id,
                                     "step": step, "val_loss": 2 + 3 / (1 + step / 5000), "perplexity": 9.0,
                                     "samples": [{"prompt": "p", "output": "o", "reference": "r"}]}) + "\n")
        seq += 1
        fh.write(json.dumps({"v": 1, "type": "finished", "seq": seq, "t": t0 + steps * 0.1 + 1, "run": run_id,
                             "status": "completed", "summary": {"message": "Completed."}}) + "\n")
    (run_dir / "summary.json").write_text(json.dumps({"run": run_id, "status": "completed", "step": steps,
                                                      "total_steps": steps, "latest": {}, "best": {}}))
    return run_dir


def memory(steps: int) -> dict[str, Any]:
    """RSS of the console while it reads a `steps`-step history into the Monitor, against 10,000 steps."""
    from screens.monitor import MonitorScreen
    from slmtui.app import SlmtuiApp

    out: dict[str, Any] = {}
    for count in (10_000, steps):
        home = Path(tempfile.mkdtemp(prefix="slmtui-perf-"))
        started = time.perf_counter()
        run_dir = write_big_run(home, count)
        size = (run_dir / "events.jsonl").stat().st_size
        written = time.perf_counter() - started
        samples: list[tuple[int, int]] = []

        async def drive(count: int = count, home: Path = home, samples: list[tuple[int, int]] = samples) -> float:
            me = psutil.Process()
            app = SlmtuiApp(home=home, start_screen="Monitor")
            async with app.run_test(size=(120, 36)) as pilot:
                while not (isinstance(app.screen, MonitorScreen) and app.screen.view.run_id == RUN_ID):
                    await pilot.pause(0.02)
                screen = app.screen
                began = time.perf_counter()
                while not (screen.view.loaded and screen.view.step == count):
                    samples.append((screen.view.step, me.memory_info().rss))
                    await pilot.pause(0.2)
                loaded = time.perf_counter() - began
                await pilot.pause(0.5)
                samples.append((count, me.memory_info().rss))
                return loaded

        loaded = asyncio.run(drive())
        shutil.rmtree(home, ignore_errors=True)
        rss = [r for _, r in samples]
        out[str(count)] = {"events_mib": round(size / 2**20, 1), "write_s": round(written, 1),
                           "history_read_s": round(loaded, 1), "rss_final_mib": round(rss[-1] / 2**20, 1),
                           "rss_max_mib": round(max(rss) / 2**20, 1),
                           "rss_at_quarters_mib": [round(samples[int(q * (len(samples) - 1))][1] / 2**20, 1)
                                                   for q in (0.25, 0.5, 0.75, 1.0)]}
    return out


def paint(runs: int, steps: int) -> dict[str, Any]:
    """First paint, then the Monitor's summary and whole history, in a real terminal."""
    socket = f"slmtui-perf-{os.getpid()}"
    _tmux(socket, "new-session", "-d", "-s", "keepalive", "-x", "100", "-y", "30", "sleep 3600")
    home = Path(tempfile.mkdtemp(prefix="slmtui-perf-"))
    write_big_run(home, steps)
    first, summary, history = [], [], []
    step_text = re.compile(rf"step {steps:,}/{steps:,}")
    history_text = f"steps 1–{steps:,}"
    try:
        for run in range(runs):
            env = f"SLMTUI_HOME={shlex.quote(str(home))} PYTHONPATH={shlex.quote(str(REPO))} TERM=xterm-256color"
            command = (f"cd {shlex.quote(str(REPO))} && exec env -u COLUMNS -u LINES {env} "
                       f"{shlex.quote(sys.executable)} -m slmtui")
            session = f"run{run}"
            start = time.perf_counter()
            _tmux(socket, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
            painted = shown = drawn = None
            while time.perf_counter() - start < 300 and drawn is None:
                screen = _tmux(socket, "capture-pane", "-p", "-t", session, check=False).stdout
                now = time.perf_counter() - start
                if painted is None and "slmtui" in screen and "5 Monitor" in screen:
                    painted = now
                    _tmux(socket, "send-keys", "-t", session, "5")
                if painted is not None and shown is None and step_text.search(screen):
                    shown = now
                if shown is not None and history_text in screen:
                    drawn = now
                time.sleep(0.005)
            _tmux(socket, "kill-session", "-t", session, check=False)
            if painted is None or shown is None or drawn is None:
                raise SystemExit("the console did not show the run within 300 s")
            first.append(painted)
            summary.append(shown)
            history.append(drawn)
    finally:
        _tmux(socket, "kill-server", check=False)
        shutil.rmtree(home, ignore_errors=True)
    return {"steps": steps, "first_paint_s": _summary(first), "monitor_summary_s": _summary(summary),
            "monitor_history_s": _summary(history)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="follow,memory,paint", help="comma-separated: follow, memory, paint")
    parser.add_argument("--rate", type=float, default=1000.0, help="events per second for follow (1000)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of writing for follow (10)")
    parser.add_argument("--steps", type=int, default=1_000_000, help="steps of the big run (1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="runs for paint (3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    result: dict[str, Any] = {"machine": f"{os.cpu_count()} CPUs, {sys.platform}",
                              "load_avg": os.getloadavg()[0], "python": sys.version.split()[0]}
    if "follow" in parts:
        result["follow"] = follow(args.rate, args.seconds)
    if "memory" in parts:
        result["memory"] = memory(args.steps)
    if "paint" in parts:
        if shutil.which("tmux") is None:
            print("bench/console_perf.py: paint is measured in tmux; install tmux.", file=sys.stderr)
            return 1
        result["paint"] = paint(args.runs, args.steps)
    result["load_avg_end"] = os.getloadavg()[0]
    print(json.dumps(result, indent=None if not args.json else 2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
