"""The GPUs screen: a card per GPU with live history, the processes on them, and what fits here."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable, Label, Select, Static

from engine.estimate import FitRow
from engine.protocol import GIB
from engine.safe_text import visible, visible_line
from screens.widgets.gpu_card import SERIES, GpuCard, gib, na, series_value
from screens.widgets.select_value import still_chosen
from slmtui.fit import FIT_GPU_COUNTS, FIT_LENGTHS, FIT_METHODS, catalog_gpus, fit_cell, fit_table
from slmtui.gpu import GpuSampler, Inventory, Nvml
from slmtui.target_gpu import DEFAULT_TARGET_GPU, set_target_gpu, target_gpu
from slmtui.ui.shell import ShellScreen
from slmtui.ui.themes import stylesheet

#: Points of history each sparkline keeps (two minutes at 1 Hz).
HISTORY_POINTS = 120
#: The catalog GPU the what-fits table starts on when this machine has none.
#: Free memory must move this much (GiB) before the what-fits table is computed again.
REFIT_STEP_GIB = 0.25


@dataclass(frozen=True)
class FitTarget:
    """The memory the what-fits table is computed against."""

    key: str  # "gpu:N" (a GPU here, free memory now) or "cat:NAME" (a catalog GPU, all of its memory)
    label: str
    capacity_gib: float | None  # None: the GPU's free memory cannot be read


class GpusScreen(ShellScreen):
    """GPU inventory sampled at 1 Hz in a worker, and the catalog's models × methods against free memory."""

    SCREEN_NAME = "GPUs"
    CSS_PATH: ClassVar = [stylesheet("gpus.tcss")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "focus_target", "Target GPU", id="gpus.target", tooltip="Choose the GPU to estimate for"),
        Binding("l", "next_length", "Length", id="gpus.length",
                tooltip="The next sequence length of the what-fits table"),
        Binding("g", "next_gpu_count", "GPUs", id="gpus.count",
                tooltip="Train over the next number of GPUs in the what-fits table (FSDP shards what one GPU "
                        "does not hold)"),
        Binding("f", "focus_fits", "Fits", id="gpus.fits",
                tooltip="Move to the what-fits table (enter on a cell opens New run with that model and method)"),
        Binding("p", "focus_processes", "Processes", id="gpus.processes", tooltip="Move to the process table"),
    ]

    inventory: reactive[Inventory | None] = reactive(None, init=False, always_update=True)
    """The newest inventory (every GPU, or the reason there is none)."""
    seq: reactive[int] = reactive(1024, init=False)
    """Tokens per sequence of the what-fits table."""
    target: reactive[str] = reactive(f"cat:{DEFAULT_TARGET_GPU}", init=False)
    """The what-fits table's GPU: `gpu:N` or `cat:NAME`."""
    fits: reactive[tuple[FitRow, ...]] = reactive(tuple, init=False)
    """The latest what-fits rows."""
    gpus: reactive[int] = reactive(1, init=False)
    """How many GPUs of the target the what-fits table trains over."""
    fits_for: tuple[str, int, int] | None = None
    """The (target, sequence length, GPU count) the what-fits rows shown were computed for."""

    @dataclass
    class Sampled(Message):
        """The sampler read the GPUs (once a second while the screen is shown)."""

        inventory: Inventory

    @dataclass
    class FitsComputed(Message):
        """The what-fits table was computed for a target and length."""

        target: FitTarget
        seq: int
        gpus: int
        rows: tuple[FitRow, ...]

    def __init__(self, nvml: Nvml | None = None, interval: float = 1.0) -> None:
        super().__init__()
        self._sampler = GpuSampler(nvml if nvml is not None else Nvml(), interval=interval)
        self._stop: threading.Event | None = None
        self._history: dict[int, dict[str, deque[float]]] = {}
        self._fit_key: tuple[str, float | None, int, int] | None = None
        self._gpu_keys: tuple[str, ...] = ()
        self._body_ready = False
        self._target_picked = False

    # ------------------------------------------------------------------ layout

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="gpus-scroll"):
            yield Static("Reading the GPUs...", id="gpus-status")
            yield VerticalScroll(id="gpus-cards")
            yield Label("Processes on the GPUs", classes="gpus-heading")
            yield DataTable(id="gpus-processes", cursor_type="row", zebra_stripes=True)
            yield Label("What fits: on which GPU, how long a sequence, over how many GPUs", classes="gpus-heading")
            with Horizontal(id="gpus-fit-controls"):
                yield Select(self._catalog_options(), value=self.target, allow_blank=False, id="gpus-target",
                             tooltip="The GPU to estimate for: one here (free memory now) or one from the catalog")
                yield Select([(f"{n} tokens", n) for n in FIT_LENGTHS], value=self.seq, allow_blank=False,
                             id="gpus-length", tooltip="Tokens per sequence (l cycles)")
                yield Select([(f"{n} GPU{'s' if n > 1 else ''}", n) for n in FIT_GPU_COUNTS], value=self.gpus,
                             allow_blank=False, id="gpus-count", tooltip="GPUs to train over (g cycles)")
            yield Static("", id="gpus-fit-caption")
            yield DataTable(id="gpus-fits", cursor_type="cell", zebra_stripes=True)

    @staticmethod
    def _catalog_options() -> list[tuple[str, str]]:
        return [(f"{name} ({memory:g} GiB)", f"cat:{name}") for name, memory in catalog_gpus()]

    def on_body_mounted(self) -> None:
        self._body_ready = True
        self._load_target()
        processes = self.query_one("#gpus-processes", DataTable)
        processes.add_columns("GPU", "pid", "user", "GPU memory", "command")
        fits = self.query_one("#gpus-fits", DataTable)
        fits.add_column("model", key="model")
        for method in FIT_METHODS:
            fits.add_column(method, key=method)
        self._start_sampling()

    # ------------------------------------------------------------------ sampling

    def _start_sampling(self) -> None:
        if self._stop is not None and not self._stop.is_set():
            return
        self._stop = threading.Event()
        self._sample(self._stop)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus-sampler", name="Reading the GPUs")
    def _sample(self, stop: threading.Event) -> None:
        def on_sample(inv: Inventory) -> None:
            self.post_message(self.Sampled(inv))

        self._sampler.run(on_sample=on_sample, stop=stop)

    def on_screen_suspend(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        inv = self.inventory
        if self._body_ready and (inv is None or inv.gpus):
            self._start_sampling()

    def on_unmount(self) -> None:
        if self._stop is not None:
            self._stop.set()
        self._sampler.nvml.close()

    def on_gpus_screen_sampled(self, message: Sampled) -> None:
        inv = message.inventory
        for gpu in inv.gpus:
            series = self._history.setdefault(gpu.index, {n: deque(maxlen=HISTORY_POINTS) for n, _ in SERIES})
            for name, _ in SERIES:
                point = series_value(gpu, name)
                if point is not None:
                    series[name].append(point)
        self.inventory = inv

    def watch_inventory(self, inv: Inventory | None) -> None:
        if inv is None or not self._body_ready:
            return
        self._show_status(inv)
        self._show_cards(inv)
        self._show_processes(inv)
        self._update_targets(inv)
        self._refit()

    def _show_status(self, inv: Inventory) -> None:
        status = self.query_one("#gpus-status", Static)
        status.set_class(inv.error is not None, "gpus-error")
        if inv.error is not None:
            status.update(Content(visible(f"No GPU to show. {inv.error}\n"
                                          "The estimates below are for a GPU you pick from the catalog.")))
        else:
            count = len(inv.gpus)
            status.update(f"{count} GPU{'s' if count != 1 else ''} · driver {na(inv.driver_version)} · "
                          f"CUDA {na(inv.cuda_version)}")

    def _show_cards(self, inv: Inventory) -> None:
        holder = self.query_one("#gpus-cards", VerticalScroll)
        cards = {card.index: card for card in holder.query(GpuCard)}
        new = [GpuCard(gpu.index, id=f"gpu-card-{gpu.index}") for gpu in inv.gpus if gpu.index not in cards]
        for card in new:
            cards[card.index] = card
        for gpu in inv.gpus:
            card = cards[gpu.index]
            card.snapshot = gpu
            card.history = {name: tuple(points) for name, points in self._history.get(gpu.index, {}).items()}
        if new:
            holder.mount_all(new)
        holder.display = bool(inv.gpus)

    def _show_processes(self, inv: Inventory) -> None:
        table = self.query_one("#gpus-processes", DataTable)
        table.clear()
        for gpu in inv.gpus:
            if not isinstance(gpu.processes, tuple):
                table.add_row(str(gpu.index), "n/a", "", "", "the driver cannot list this GPU's processes")
                continue
            for proc in gpu.processes:  # a command line is anyone's text: shown plain, controls visible
                table.add_row(str(gpu.index), str(proc.pid), Content(visible_line(na(proc.user))),
                              f"{gib(proc.gpu_memory)} GiB" if isinstance(proc.gpu_memory, int) else "n/a",
                              Content(visible_line(na(proc.command)[:120])))
        if not table.row_count:
            table.add_row("", "", "", "", "no compute processes" if inv.gpus else "no GPU")

    # ------------------------------------------------------------------ what fits

    def _update_targets(self, inv: Inventory) -> None:
        keys = tuple(f"gpu:{gpu.index}" for gpu in inv.gpus)
        if keys == self._gpu_keys:
            return
        self._gpu_keys = keys
        here = [(f"GPU {gpu.index} here ({gib(gpu.memory_free)} GiB free)", f"gpu:{gpu.index}") for gpu in inv.gpus]
        select = self.query_one("#gpus-target", Select)
        current = self.target if self.target.startswith("cat:") or self.target in keys else None
        with self.prevent(Select.Changed):
            select.set_options([*here, *self._catalog_options()])
            # a GPU here comes first, unless a catalog GPU was picked on this screen
            select.value = keys[0] if keys and not self._target_picked else current or (
                keys[0] if keys else f"cat:{DEFAULT_TARGET_GPU}")
        self.target = str(select.value)

    def resolve_target(self) -> FitTarget:
        """The target's name and the memory it offers now."""
        kind, _, name = self.target.partition(":")
        if kind == "gpu":
            inv = self.inventory
            gpu = next((g for g in inv.gpus if str(g.index) == name), None) if inv is not None else None
            free = gpu.memory_free if gpu is not None else None
            label = f"GPU {name} ({na(gpu.name) if gpu is not None else 'gone'})"
            return FitTarget(self.target, label, free / GIB if isinstance(free, int) else None)
        memory = dict(catalog_gpus()).get(name)
        return FitTarget(self.target, name, memory)

    def _refit(self) -> None:
        if not self._body_ready:
            return
        target = self.resolve_target()
        rounded = None if target.capacity_gib is None else round(target.capacity_gib / REFIT_STEP_GIB)
        key = (target.key, rounded, self.seq, self.gpus)
        if key == self._fit_key:
            return
        self._fit_key = key
        if target.capacity_gib is None:
            self.query_one("#gpus-fit-caption", Static).update(
                f"{target.label}: its free memory cannot be read; pick a catalog GPU to estimate for.")
            self.fits_for = (target.key, self.seq, self.gpus)
            self.fits = ()
            return
        self._estimate_fits(target, self.seq, self.gpus)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus-fits", name="Estimating what fits")
    def _estimate_fits(self, target: FitTarget, seq: int, gpus: int) -> None:
        assert target.capacity_gib is not None
        rows = tuple(fit_table(target.capacity_gib, seq, gpus=gpus))
        self.post_message(self.FitsComputed(target, seq, gpus, rows))

    def on_gpus_screen_fits_computed(self, message: FitsComputed) -> None:
        if (message.target.key, message.seq, message.gpus) != (self.target, self.seq, self.gpus):
            return  # an estimate for a choice the user has since left (its worker was cancelled late)
        what = "free now" if message.target.key.startswith("gpu:") else "in all"
        over = (f" Over {message.gpus} GPUs (per GPU): \"fsdp\" marks a model one GPU does not hold, sharded over "
                "all of them; the others are whole on each GPU." if message.gpus > 1 else "")
        self.query_one("#gpus-fit-caption", Static).update(
            f"{message.target.label}: {message.target.capacity_gib:.1f} GiB {what}, {message.seq} tokens a "
            f"sequence; each cell: verdict at micro-batch 1 and the largest micro-batch that fits.{over}")
        self.fits_for = (message.target.key, message.seq, message.gpus)
        self.fits = message.rows

    def watch_fits(self, rows: tuple[FitRow, ...]) -> None:
        table = self.query_one("#gpus-fits", DataTable)
        table.clear()
        cells: dict[str, dict[str, str]] = {}
        for row in rows:
            cells.setdefault(row.model, {})[row.method] = fit_cell(row.verdict, row.max_micro_batch, row.shards)
        for model, by_method in cells.items():
            table.add_row(model, *(by_method.get(m, "") for m in FIT_METHODS), key=model)

    @on(Select.Changed, "#gpus-target")
    def _target_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and still_chosen(event) and event.value != self.target:
            self.target = event.value
            self._target_picked = True
            if event.value.startswith("cat:"):
                self._save_target(event.value[4:])

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus-target", name="Saving the target GPU")
    def _save_target(self, name: str) -> None:
        set_target_gpu(self.store, name)

    @work(thread=True, exclusive=True, exit_on_error=False, group="gpus-target", name="Reading the target GPU")
    def _load_target(self) -> None:
        name = target_gpu(self.store)
        self.app.call_from_thread(self._target_loaded, f"cat:{name}")

    def _target_loaded(self, target: str) -> None:
        select = self.query_one("#gpus-target", Select)
        if not self._target_picked and str(select.value).startswith("cat:") and select.value != target:
            with self.prevent(Select.Changed):
                select.value = target
            self.target = target

    @on(Select.Changed, "#gpus-length")
    def _length_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and still_chosen(event):
            self.seq = event.value

    @on(Select.Changed, "#gpus-count")
    def _gpu_count_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, int) and still_chosen(event):
            self.gpus = event.value

    def watch_target(self) -> None:
        self._refit()

    def watch_seq(self) -> None:
        select = self.query("#gpus-length")
        if select and select.first(Select).value != self.seq:
            select.first(Select).value = self.seq
        self._refit()

    def watch_gpus(self) -> None:
        select = self.query("#gpus-count")
        if select and select.first(Select).value != self.gpus:
            select.first(Select).value = self.gpus
        self._refit()

    @on(DataTable.CellSelected, "#gpus-fits")
    def _fit_chosen(self, event: DataTable.CellSelected) -> None:
        method = str(event.cell_key.column_key.value)
        if method not in FIT_METHODS:
            method = "lora"
        model = str(event.cell_key.row_key.value)
        self.host.open_new_run({"model": {"name": _hub_id(model)}, "method": {"kind": method},
                                "data": {"max_length": self.seq}, "train": {"devices": self.gpus}})

    # ------------------------------------------------------------------ actions

    def action_focus_target(self) -> None:
        """Open the target GPU picker."""
        select = self.query_one("#gpus-target", Select)
        select.focus()
        select.action_show_overlay()

    def action_next_length(self) -> None:
        """Cycle the what-fits table's sequence length."""
        lengths = list(FIT_LENGTHS)
        self.seq = lengths[(lengths.index(self.seq) + 1) % len(lengths)] if self.seq in lengths else 1024

    def action_next_gpu_count(self) -> None:
        """Cycle the number of GPUs the what-fits table trains over."""
        counts = list(FIT_GPU_COUNTS)
        self.gpus = counts[(counts.index(self.gpus) + 1) % len(counts)] if self.gpus in counts else 1

    def action_focus_fits(self) -> None:
        """Move to the what-fits table."""
        self.query_one("#gpus-fits", DataTable).focus()

    def action_focus_processes(self) -> None:
        """Move to the process table."""
        self.query_one("#gpus-processes", DataTable).focus()


def _hub_id(catalog_name: str) -> str:
    from engine.catalog import load_catalog

    entry = load_catalog().model(catalog_name)
    return entry.hub_id if entry is not None else catalog_name
