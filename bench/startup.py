"""Start-up speed: the console's time to first paint, and `slmtui --version`.

    python bench/startup.py [--runs 7] [--entries 0] [--json]

First paint: `python -m slmtui` is started in a detached tmux pane of 100 × 30 (a private tmux server, already
running, so its own start is not counted) and the pane is polled every 5 ms until the header and the screen
tabs are on screen (the console opens on its first screen, the Checklist); then the key `6` is sent and
"journal loaded" is when the journal shows its entry count (read from the store in a worker), counted from
the launch too. Each run gets a fresh HOME (holding `--entries` journal entries). `--version` is timed as a plain subprocess. Medians
over `--runs`, plus min and max. Goals: first paint ≤ 1 s, `--version` ≤ 0.3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOADED = re.compile(r"\d entr(y|ies)\b")  # the journal's count, e.g. "10,000 entries", once the store is read


def _tmux(socket: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, check=check)


def _seed(home: Path, entries: int) -> None:
    if entries:
        sys.path.insert(0, str(REPO))
        from slmtui.store import Store

        Store(home).add_entries(
            [{"kind": "note", "text": f"entry {i}", "source": f"bench:{i}"} for i in range(entries)]
        )


def console_first_paint(runs: int, entries: int, timeout: float = 30.0) -> dict[str, object]:
    """Seconds from launching the console to its header on screen, and to the journal's entries."""
    socket = f"slmtui-bench-{os.getpid()}"
    _tmux(socket, "new-session", "-d", "-s", "keepalive", "-x", "100", "-y", "30", "sleep 3600")
    paint: list[float] = []
    data: list[float] = []
    template = Path(tempfile.mkdtemp(prefix="slmtui-bench-template-"))
    _seed(template, entries)  # once; each run gets a copy
    try:
        for run in range(runs):
            home = Path(tempfile.mkdtemp(prefix="slmtui-bench-home-"))
            shutil.copytree(template, home, dirs_exist_ok=True)
            env = f"SLMTUI_HOME={shlex.quote(str(home))} PYTHONPATH={shlex.quote(str(REPO))} TERM=xterm-256color"
            command = f"cd {shlex.quote(str(REPO))} && exec env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m slmtui"
            session = f"run{run}"
            start = time.perf_counter()
            _tmux(socket, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command)
            painted = loaded = None
            while time.perf_counter() - start < timeout and loaded is None:
                screen = _tmux(socket, "capture-pane", "-p", "-t", session, check=False).stdout
                now = time.perf_counter() - start
                if painted is None and "slmtui" in screen and "6 Journal" in screen:
                    painted = now
                    _tmux(socket, "send-keys", "-t", session, "6")
                if painted is not None and LOADED.search(screen):
                    loaded = now
                time.sleep(0.005)
            _tmux(socket, "kill-session", "-t", session, check=False)
            shutil.rmtree(home, ignore_errors=True)
            if painted is None or loaded is None:
                raise SystemExit(f"the console did not paint within {timeout} s")
            paint.append(painted)
            data.append(loaded)
    finally:
        _tmux(socket, "kill-server", check=False)
        shutil.rmtree(template, ignore_errors=True)
    return {"first_paint_s": _summary(paint), "journal_loaded_s": _summary(data), "entries": entries}


def version_time(runs: int) -> dict[str, object]:
    """Seconds for `python -m slmtui --version` to run to completion."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "slmtui", "--version"], env=env, cwd=REPO, check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return {"version_s": _summary(times)}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3), "max": round(max(values), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per figure (default 7)")
    parser.add_argument("--entries", type=int, default=0, help="journal entries in each fresh HOME (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("bench/startup.py: the console's first paint is measured in tmux; install tmux.", file=sys.stderr)
        return 1
    result = {"machine": f"{os.cpu_count()} CPUs, {sys.platform}", "python": sys.version.split()[0], "runs": args.runs}
    result.update(version_time(args.runs))
    result.update(console_first_paint(args.runs, args.entries))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:18} {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
