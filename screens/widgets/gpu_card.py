"""One GPU as a card: memory bar, readings, and sparklines of its recent history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from rich.style import Style
from textual.app import ComposeResult, RenderResult
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.renderables.bar import Bar
from textual.widget import Widget
from textual.widgets import Label, Sparkline, Static

from engine.protocol import GIB
from slmtui.gpu import NA, GpuSnapshot

#: (series name, label) of the sparklines under each card, in order.
SERIES = (("gpu_util", "util %"), ("memory_used", "memory"), ("power_draw", "power W"), ("temperature", "temp °C"))


def na(value: Any, fmt: str = "{}") -> str:
    """A reading as text, or "n/a" when the GPU, driver or library cannot give it."""
    return "n/a" if value is NA or value is None else fmt.format(value)


def gib(value: Any) -> str:
    """Bytes as GiB with one decimal, or n/a."""
    return "n/a" if not isinstance(value, int) else f"{value / GIB:.1f}"


def readings(gpu: GpuSnapshot) -> list[str]:
    """The card's reading lines: load, temperature, power, clocks, link, ECC and MIG."""
    return [
        f"util {na(gpu.gpu_util, '{}%')}  mem util {na(gpu.memory_util, '{}%')}  "
        f"temp {na(gpu.temperature, '{} °C')}  power {na(gpu.power_draw, '{:.0f}')} / "
        f"{na(gpu.power_limit, '{:.0f}')} W",
        f"clocks SM {na(gpu.sm_clock, '{} MHz')} mem {na(gpu.memory_clock, '{} MHz')}  "
        f"PCIe gen {na(gpu.pcie_gen)} x{na(gpu.pcie_width)}  ECC {na(gpu.ecc_corrected)}/"
        f"{na(gpu.ecc_uncorrected)}  MIG {na(gpu.mig_mode)}",
    ]


def series_value(gpu: GpuSnapshot, name: str) -> float | None:
    """One sparkline point of `gpu` (None when the reading is n/a)."""
    value = getattr(gpu, name)
    if value is NA:
        return None
    return value / GIB if name == "memory_used" else float(value)


class MemoryBar(Widget):
    """The share of a GPU's memory in use, filled to the width the bar has when drawn (textual's ProgressBar rounds
    its fill to the width it had when the value was set: a value set before layout drew differently)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"memory-bar--used"}
    DEFAULT_CSS = """
    MemoryBar {
        height: 1;
        & > .memory-bar--used {
            color: $primary;
            background: $surface;
        }
    }
    """

    fraction: reactive[float | None] = reactive(None)
    """Used / total, 0 to 1 (None: unknown, drawn empty)."""

    def render(self) -> RenderResult:
        style = self.get_component_rich_style("memory-bar--used")
        filled = self.size.width * min(max(self.fraction or 0.0, 0.0), 1.0)
        return Bar(highlight_range=(0, filled), highlight_style=Style.from_color(style.color),
                   background_style=Style.from_color(style.bgcolor))


class GpuCard(Vertical):
    """A GPU's card; the screen hands it the newest snapshot and the history of each series."""

    snapshot: reactive[GpuSnapshot | None] = reactive(None, layout=True, always_update=True)
    """The newest readings of this GPU."""
    history: reactive[dict[str, Sequence[float]]] = reactive(dict, always_update=True)
    """Recent points of each series in `SERIES` (oldest first), n/a readings left out."""

    def __init__(self, index: int, **kwargs: Any) -> None:
        super().__init__(classes="gpu-card", **kwargs)
        self.index = index
        self.border_title = f"GPU {index}"

    def compose(self) -> ComposeResult:
        with Horizontal(classes="gpu-memory"):
            yield MemoryBar(classes="gpu-memory-bar")
            yield Label("", classes="gpu-memory-text")
        yield Static("", classes="gpu-readings")
        with Horizontal(classes="gpu-sparks"):
            for name, label in SERIES:
                with Vertical(classes="gpu-spark"):
                    yield Label(label, classes="gpu-spark-label")
                    yield Sparkline([], id=f"spark-{name}", summary_function=max)

    def watch_snapshot(self) -> None:
        self._show_snapshot()

    def watch_history(self) -> None:
        self._show_history()

    def on_mount(self) -> None:
        self.call_after_refresh(self._show_snapshot)
        self.call_after_refresh(self._show_history)

    def _show_snapshot(self) -> None:
        gpu = self.snapshot
        bars = self.query(MemoryBar)
        if gpu is None or not bars:  # not composed yet: on_mount shows it
            return
        self.border_title = f"GPU {gpu.index} · {na(gpu.name)}"
        self.border_subtitle = na(gpu.uuid)
        total, used = gpu.memory_total, gpu.memory_used
        bar = bars.first()
        fraction = used / total if isinstance(total, int) and isinstance(used, int) and total > 0 else None
        bar.display = fraction is not None
        bar.fraction = fraction
        text = (f"{fraction:.0%} · {gib(used)} / {gib(total)} GiB used, {gib(gpu.memory_free)} free"
                if fraction is not None else "memory n/a")
        self.query_one(".gpu-memory-text", Label).update(text)
        self.query_one(".gpu-readings", Static).update("\n".join(readings(gpu)))

    def _show_history(self) -> None:
        for name, _ in SERIES:
            for spark in self.query(f"#spark-{name}").results(Sparkline):
                spark.data = list(self.history.get(name, ()))
