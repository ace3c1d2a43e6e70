"""Chart rendering speed: the project's braille charts against plotext (what textual-plotext draws with).

    python bench/chart_render.py [--repeats 21] [--plotext-lib /tmp/plotext-lib] [--show] [--json]

Two series of a noisy falling loss, (a) 800 and (b) 20,000 points each, drawn at 120 × 20 cells with one
step marker, no app: each figure is the median CPU time of one render, from the points to a rich `Text` or
to rows of styled text.

- overlay: `series_rows` + `rows_text` (screens/widgets/line_chart.py), what `LineChart.render` does.
- monitor: `chart_rows` (screens/widgets/loss_chart.py) with smoothing 0.6, so the raw train line is drawn
  behind the smoothed one and each validation point gets its block (the Monitor never holds more than
  `SERIES_CAPACITY` points a series; the 20,000 case is for other charts).
- plotext hd / braille: a fresh plotext figure, `plotsize`, `plot` per series, `vline`, `build()` and
  `Text.from_ansi`, which is `PlotextPlot.render` in textual-plotext; "hd" is plotext's default marker
  (2 × 2 dots a cell), "braille" its 2 × 4 one.

plotext is not a dependency: install it apart (`pip install --target /tmp/plotext-lib plotext==5.3.2`); the
plotext rows are skipped, saying so, when it is not there.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.style import Style  # noqa: E402
from rich.text import Text  # noqa: E402

from screens.widgets.line_chart import Series, rows_text, series_rows  # noqa: E402
from screens.widgets.loss_chart import chart_rows  # noqa: E402
from slmtui.series import Point  # noqa: E402

WIDTH, HEIGHT = 120, 20
STYLES = {"axis": Style(color="grey50"), "marker": Style(color="green"), "series-0": Style(color="blue"),
          "series-1": Style(color="yellow")}
Curve = list[tuple[float, float]]


def curve(points: int, seed: int, start: float) -> Curve:
    """A loss falling from `start` towards 1 with noise, one point a step."""
    rnd = random.Random(seed)
    return [(step, 1 + (start - 1) * math.exp(-5 * step / points) + 0.1 * rnd.random())
            for step in range(1, points + 1)]


def overlay(a: Curve, b: Curve) -> Callable[[], Any]:
    series = [Series("run a", a), Series("run b", b)]
    return lambda: rows_text(series_rows(series, WIDTH, HEIGHT, markers=[len(a) // 3]), STYLES)


def monitor(a: Curve, b: Curve) -> Callable[[], Any]:
    train = [Point(int(s), int(s), v, v, v, v) for s, v in a]
    val = [Point(int(s), int(s), v, v, v, v) for s, v in b]
    return lambda: chart_rows(train, val, [len(a) // 3], WIDTH, HEIGHT, smoothing=0.6)


def plotext_chart(a: Curve, b: Curve, marker: str) -> Callable[[], Any]:
    from plotext._figure import _figure_class

    def render() -> Text:
        figure = _figure_class()
        figure._limit_size(False, False)  # the widget's size, not the terminal's
        figure.plotsize(WIDTH, HEIGHT)
        for points in (a, b):
            figure.plot([x for x, _ in points], [y for _, y in points], marker=marker)
        figure.vline(len(a) // 3)
        return Text.from_ansi(figure.build())

    return render


def median_ms(render: Callable[[], Any], repeats: int) -> float:
    render()  # warm: imports, caches
    times = []
    for _ in range(repeats):
        start = time.process_time()
        render()
        times.append(time.process_time() - start)
    return statistics.median(times) * 1000


def plotext_available(lib: Path) -> bool:
    if lib.is_dir():
        sys.path.insert(0, str(lib))
    try:
        import plotext  # noqa: F401
    except ImportError:
        print(f"plotext is not installed (looked in {lib} and on sys.path): its rows are skipped. Install it"
              f" apart: pip install --target {lib} plotext==5.3.2", file=sys.stderr)
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21,
                        help="renders per figure (default 21; 20,000 points: a third)")
    parser.add_argument("--plotext-lib", type=Path, default=Path("/tmp/plotext-lib"),
                        help="where plotext is installed")
    parser.add_argument("--show", action="store_true", help="print each chart of 800 points once")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    charts: dict[str, Callable[..., Callable[[], Any]]] = {"overlay": overlay, "monitor": monitor}
    if plotext_available(args.plotext_lib):
        charts["plotext hd"] = lambda a, b: plotext_chart(a, b, "hd")
        charts["plotext braille"] = lambda a, b: plotext_chart(a, b, "braille")
    results: dict[str, dict[int, float]] = {name: {} for name in charts}
    for points in (800, 20_000):
        a, b = curve(points, 1, 3.0), curve(points, 2, 3.4)
        repeats = args.repeats if points <= 800 else max(3, args.repeats // 3)
        for name, make in charts.items():
            render = make(a, b)
            if args.show and points == 800:
                shown = render()
                print(f"--- {name}\n" + (shown.plain if isinstance(shown, Text) else
                                         "\n".join("".join(text for text, _ in row) for row in shown)))
            results[name][points] = median_ms(render, repeats)
    if args.json:
        print(json.dumps({"width": WIDTH, "height": HEIGHT, "median_cpu_ms": results}))
        return 0
    print(f"| chart ({WIDTH} × {HEIGHT} cells) | 2 × 800 points, ms | 2 × 20,000 points, ms |")
    print("| --- | --- | --- |")
    for name, figures in results.items():
        print(f"| {name} | {figures[800]:.2f} | {figures[20_000]:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
