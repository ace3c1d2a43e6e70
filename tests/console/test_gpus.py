"""The GPUs screen against the fake pynvml: cards with data and history, n/a readings, no GPU, what fits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml as real
import pytest
from console_helpers import fixed_home, of_type, wait_for
from textual.app import App, ComposeResult
from textual.message import Message
from textual.pilot import Pilot
from textual.widgets import DataTable, Footer, Select, Sparkline, Static

from screens.gpus import GpusScreen
from screens.new_run import NewRunScreen
from screens.widgets.gpu_card import GpuCard, MemoryBar
from slmtui import shortlist
from slmtui.app import SlmtuiApp
from slmtui.gpu import Inventory, Nvml
from slmtui.store import Store
from slmtui.target_gpu import target_gpu
from slmtui.ui.registry import default_registry
from tests.gpu_fakes import DEVICE_CALLS, GIB, FakeNvml


def gpus_app(home: Path, fake: FakeNvml, interval: float = 0.05) -> SlmtuiApp:
    registry = default_registry()
    registry.register("GPUs", "4", lambda host: GpusScreen(nvml=Nvml(fake.module), interval=interval))
    return SlmtuiApp(home=home, start_screen="gpus", registry=registry)


def card_text(card: GpuCard) -> str:
    return " ".join(str(s.content) for s in card.query(Static))


def fits_shown(app: App[Any]) -> bool:
    """The what-fits table holds rows for the target and length now chosen (not an earlier choice's)."""
    screen = app.screen
    return (isinstance(screen, GpusScreen) and bool(screen.fits)
            and screen.fits_for == (screen.target, screen.seq, screen.gpus))


def screen_of(app: App[Any]) -> GpusScreen:
    assert isinstance(app.screen, GpusScreen)
    return app.screen


async def test_cards_show_every_reading_history_processes_and_what_fits(home: Path) -> None:
    messages: list[Message] = []
    app = gpus_app(home, FakeNvml(count=2))
    async with app.run_test(size=(110, 40), message_hook=messages.append) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, GpusScreen) and len(app.screen.query(GpuCard)) == 2
                       and len(app.screen.query_one(GpuCard).history.get("gpu_util", ())) >= 3
                       and "util 37%" in card_text(app.screen.query_one("#gpu-card-1", GpuCard)), what="history")
        screen = screen_of(app)
        card = screen.query_one("#gpu-card-1", GpuCard)
        text = card_text(card)
        for words in ("2.0 / 80.0 GiB used, 78.0 free", "util 37%", "mem util 12%", "temp 41 °C",
                      "power 123 / 700 W", "SM 1980 MHz", "mem 2619 MHz", "PCIe gen 5 x16", "ECC 0/3",
                      "MIG disabled"):
            assert words in text, words
        assert "NVIDIA H100" in str(card.border_title) and card.border_subtitle == "GPU-handle1"
        assert card.query_one(MemoryBar).fraction == pytest.approx(2 / 80) and "2% · 2.0 / 80.0 GiB used" in text
        sparks = {s.id: list(s.data or []) for s in card.query(Sparkline)}
        assert len(sparks["spark-gpu_util"]) >= 3 and set(sparks["spark-gpu_util"]) == {37.0}
        assert sparks["spark-power_draw"] and all(p == pytest.approx(123.456) for p in sparks["spark-power_draw"])
        assert "2 GPUs · driver 550.54.15 · CUDA 12.4" in str(screen.query_one("#gpus-status", Static).content)
        procs = screen.query_one("#gpus-processes", DataTable)
        rows = [[str(cell) for cell in procs.get_row_at(i)] for i in range(procs.row_count)]
        assert len(rows) == 4 and rows[0][3] == "3.0 GiB" and "python" in rows[0][4].lower()
        assert rows[1][2:] == ["n/a", "n/a", "n/a"]  # a process gone from the process table: n/a, not a crash
        await wait_for(pilot, lambda: fits_shown(app), what="the what-fits table")
        computed = of_type(messages, GpusScreen.FitsComputed)[-1]
        assert isinstance(computed, GpusScreen.FitsComputed)
        assert computed.target.key == "gpu:0" and computed.target.capacity_gib == pytest.approx(78.0)
        fits = screen.query_one("#gpus-fits", DataTable)
        assert fits.row_count == len({r.model for r in screen.fits})
        assert str(fits.get_row("smollm2-135m")[2]).startswith("fits ×")
        assert len(of_type(messages, GpusScreen.Sampled)) >= 3


async def test_each_reading_raising_shows_na_and_nothing_else_breaks() -> None:
    """One card per NVML call, each from a fake where only that call raises."""
    snapshots = []
    for call in sorted(DEVICE_CALLS):
        fake = FakeNvml(count=1)
        fake.raises[call] = real.NVMLError_Unknown()
        inv = Nvml(fake.module).snapshot()
        snapshots.append((call, inv.gpus[0]))

    class Cards(App[None]):
        def compose(self) -> ComposeResult:
            for i, _ in enumerate(snapshots):
                yield GpuCard(i, id=f"card-{i}")

    app = Cards()
    async with app.run_test(size=(120, 200)) as pilot:
        for i, (_, gpu) in enumerate(snapshots):
            app.query_one(f"#card-{i}", GpuCard).snapshot = gpu
        await pilot.pause()
        expected = {
            "nvmlDeviceGetName": "GPU 0 · n/a", "nvmlDeviceGetUUID": "n/a", "nvmlDeviceGetMemoryInfo": "memory n/a",
            "nvmlDeviceGetUtilizationRates": "util n/a  mem util n/a", "nvmlDeviceGetTemperature": "temp n/a",
            "nvmlDeviceGetPowerUsage": "power n/a / 700 W", "nvmlDeviceGetEnforcedPowerLimit": "power 123 / n/a W",
            "nvmlDeviceGetClockInfo": "SM n/a mem n/a", "nvmlDeviceGetCurrPcieLinkGeneration": "PCIe gen n/a x16",
            "nvmlDeviceGetCurrPcieLinkWidth": "PCIe gen 5 xn/a", "nvmlDeviceGetTotalEccErrors": "ECC n/a/n/a",
            "nvmlDeviceGetMigMode": "MIG n/a", "nvmlDeviceGetComputeRunningProcesses": "",
        }
        for i, (call, _) in enumerate(snapshots):
            card = app.query_one(f"#card-{i}", GpuCard)
            text = f"{card.border_title} {card.border_subtitle} {card_text(card)}"
            assert expected[call] in text, call
            others = text.count("n/a") - expected[call].count("n/a")
            assert others == 0, f"{call}: {text}"
            assert card.query_one(MemoryBar).display == (call != "nvmlDeviceGetMemoryInfo")


async def test_unreadable_free_memory_and_processes_still_leave_a_working_screen(home: Path) -> None:
    fake = FakeNvml(count=1)
    fake.raises["nvmlDeviceGetMemoryInfo"] = real.NVMLError_NotSupported()
    fake.raises["nvmlDeviceGetComputeRunningProcesses"] = real.NVMLError_NotSupported()
    app = gpus_app(home, fake)
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, GpusScreen) and app.screen.inventory is not None
                       and "cannot be read" in str(app.screen.query_one("#gpus-fit-caption", Static).content),
                       what="the caption saying free memory is unknown")
        screen = screen_of(app)
        procs = screen.query_one("#gpus-processes", DataTable)
        assert "cannot list" in procs.get_row_at(0)[4]
        screen.query_one("#gpus-target", Select).value = "cat:A100-80GB"
        await wait_for(pilot, lambda: fits_shown(app), what="fits for a catalog GPU")
        assert "A100-80GB" in str(screen.query_one("#gpus-fit-caption", Static).content)


@pytest.mark.parametrize("setup", ["no driver", "no devices"])
async def test_without_a_gpu_it_says_why_and_estimates_for_a_catalog_gpu(home: Path, setup: str) -> None:
    fake = FakeNvml(count=0)
    if setup == "no driver":
        fake.raises["nvmlInit"] = real.NVMLError_LibraryNotFound()
    messages: list[Message] = []
    app = gpus_app(home, fake)
    async with app.run_test(size=(110, 40), message_hook=messages.append) as pilot:
        await wait_for(pilot, lambda: fits_shown(app), what="fits")
        screen = screen_of(app)
        status = str(screen.query_one("#gpus-status", Static).content)
        reason = "no NVIDIA GPU or driver" if setup == "no driver" else "reports no devices"
        assert status.startswith("No GPU to show.") and reason in status
        assert not screen.query(GpuCard) and screen.target == "cat:RTX-4090"  # the one target-GPU setting
        await pilot.press("l")
        await wait_for(pilot, lambda: any(m.seq == 2048 for m in of_type(messages, GpusScreen.FitsComputed)),
                       what="fits at the next length")
        screen.query_one("#gpus-target", Select).value = "cat:T4"
        await wait_for(pilot, lambda: of_type(messages, GpusScreen.FitsComputed)[-1].target.key == "cat:T4",
                       what="fits on a T4")
        t4 = {(r.model, r.method): r for r in screen.fits}
        # the choice is the console's target GPU: New run and the Shortlist plan for it too
        await wait_for(pilot, lambda: target_gpu(Store(home)) == "T4", what="the target saved")
        assert shortlist.gpu_target(Store(home), Inventory(time=0.0, error="no driver")).name == "T4"
        app.open_new_run()
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen) and app.screen.is_mounted,
                       what="New run")
        assert app.screen.query_one("#nr-gpu", Select).value == "cat:T4"
        await pilot.press("escape")
        assert t4[("qwen2.5-7b", "full")].verdict == "exceeds" and t4[("smollm2-135m", "qlora")].verdict == "fits"
        assert len(of_type(messages, GpusScreen.Sampled)) == 1  # no driver: sampled once, then left alone


async def test_choosing_a_fit_cell_opens_new_run_with_that_model_and_method(home: Path) -> None:
    messages: list[Message] = []
    app = gpus_app(home, FakeNvml(count=0))
    async with app.run_test(size=(110, 40), message_hook=messages.append) as pilot:
        await wait_for(pilot, lambda: fits_shown(app), what="fits")
        await pilot.press("f")
        table = app.screen.query_one("#gpus-fits", DataTable)
        assert table.has_focus
        await pilot.press("right", "right", "right", "enter")  # first model, qlora
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen) and bool(app.screen.raw), what="New run")
        new_run = app.screen
        assert isinstance(new_run, NewRunScreen)
        assert new_run.raw["model"]["name"] == "HuggingFaceTB/SmolLM2-135M"
        assert new_run.raw["method"]["kind"] == "qlora" and new_run.raw["data"]["max_length"] == 1024


async def test_over_several_gpus_the_table_shards_what_one_does_not_hold_and_new_run_gets_the_count(
        home: Path) -> None:
    app = gpus_app(home, FakeNvml(count=0))  # no GPU here: the catalog's target GPU, the whole of its memory
    async with app.run_test(size=(110, 40)) as pilot:
        await wait_for(pilot, lambda: fits_shown(app), what="fits on one GPU")
        screen = screen_of(app)
        one = {(r.model, r.method): r for r in screen.fits}
        await pilot.press("g", "g")  # 1 → 2 → 4 GPUs
        await wait_for(pilot, lambda: screen.gpus == 4 and fits_shown(app), what="fits over four GPUs")
        assert screen.query_one("#gpus-count", Select).value == 4
        four = {(r.model, r.method): r for r in screen.fits}
        sharded = [key for key, row in four.items() if row.shards == 4]
        assert sharded and all(key[1] in ("full", "lora") for key in sharded)
        assert all(four[key].total_gib < one[key].total_gib for key in sharded)  # per GPU: a share of the weights
        assert all(row.shards == 1 for key, row in four.items() if key[1] == "qlora")
        caption = str(screen.query_one("#gpus-fit-caption", Static).content)
        assert "Over 4 GPUs (per GPU)" in caption
        table = screen.query_one("#gpus-fits", DataTable)
        model, method = sharded[0]
        cell = str(table.get_cell(model, method))
        assert cell.endswith(" fsdp"), cell
        await pilot.press("f")
        table.move_cursor(row=table.get_row_index(model), column=table.get_column_index(method))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, NewRunScreen) and bool(app.screen.raw), what="New run")
        assert isinstance(app.screen, NewRunScreen)
        assert app.screen.raw["train"]["devices"] == 4 and app.screen.raw["method"]["kind"] == method


async def test_layout_at_80x24(home: Path) -> None:
    app = gpus_app(home, FakeNvml(count=1))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: fits_shown(app) and bool(app.screen.query(GpuCard)), what="a card and fits")
        await pilot.pause()
        screen = screen_of(app)
        footer = screen.query_one(Footer)
        assert footer.region.y == 23 and footer.region.width == 80
        card = screen.query_one(GpuCard)
        assert card.region.right <= 80 and card.region.height >= 7
        readings = card.query_one(".gpu-readings", Static)
        assert readings.region.width >= 70, "a reading line is not cut at 80 columns"
        for selector in ("#gpus-target", "#gpus-length", "#gpus-count"):
            assert screen.query_one(selector).region.right <= 80


async def test_a_selects_late_announcement_does_not_move_the_target_off_the_gpu_here(home: Path) -> None:
    """A Select's announcement bubbles up to the screen behind a GPU sample posted to it directly: the target's
    first value (the saved catalog GPU), arriving after the sample chose GPU 0, must not take the target back."""
    app = gpus_app(home, FakeNvml(count=1))
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: fits_shown(app) and bool(app.screen.query(GpuCard)), what="a card and fits")
        screen = screen_of(app)
        assert screen.target == "gpu:0"
        target = screen.query_one("#gpus-target", Select)
        screen.post_message(Select.Changed(target, f"cat:{target_gpu(Store(home))}"))
        length = screen.query_one("#gpus-length", Select)
        screen.post_message(Select.Changed(length, 4096))  # the length Select holds 1024: as late as the other
        count = screen.query_one("#gpus-count", Select)
        count.value = 2  # a current announcement, handled after the two late ones
        await wait_for(pilot, lambda: screen.gpus == 2 and fits_shown(app), what="the count taken")
        assert (screen.target, screen.seq, str(target.value)) == ("gpu:0", 1024, "gpu:0")
        assert "GPU 0 (NVIDIA H100" in str(screen.query_one("#gpus-fit-caption", Static).content)


def _stable_fake() -> FakeNvml:
    fake = FakeNvml(count=1)
    # A process no one can look up, so the picture does not depend on this test's own pid and command line.
    fake.module.nvmlDeviceGetComputeRunningProcesses = lambda h: [SimpleNamespace(pid=4194311, usedGpuMemory=5 * GIB)]
    return fake


@pytest.fixture
def snapshot_home() -> Iterator[Path]:
    with fixed_home("slmtui-gpus-snapshot") as path:
        yield path


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=["80x24", "120x36"])
def test_gpus_snapshot(snap_compare: Any, snapshot_home: Path, size: tuple[int, int]) -> None:
    async def loaded(pilot: Pilot[None]) -> None:
        app = pilot.app
        await wait_for(pilot, lambda: fits_shown(app) and bool(app.screen.query(GpuCard)), what="a card and fits")
        await pilot.pause()

    assert snap_compare(gpus_app(snapshot_home, _stable_fake(), interval=3600), terminal_size=size,
                        run_before=loaded)
