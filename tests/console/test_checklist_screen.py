"""The Checklist screen inside the real console (header, tabs, footer), driven by keyboard through the pilot:
state, messages, persistence, scrolling to the focused field at every size, and SVG snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from console_helpers import fixed_home, wait_for
from snapshot_apps.checklist_app import seed
from textual.message import Message
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Input, RadioSet, Static
from textual.widgets._footer import FooterKey

from screens.checklist import ChecklistScreen
from screens.widgets.answers import AnswerCheckbox, DirectionToggle
from screens.widgets.verdict_panel import VerdictPanel
from slmtui import checklist as ck
from slmtui.app import SlmtuiApp
from slmtui.store import Store, StoreError

SIZES = [(80, 24), (100, 30), (120, 36), (200, 60)]


def console(home: Path, save_delay: float = 0.0) -> SlmtuiApp:
    """The real console on `home`; it opens on the checklist, whose autosave waits `save_delay` seconds."""
    ChecklistScreen.SAVE_DELAY = save_delay  # restored by the fixture below
    app = SlmtuiApp(home=home)
    app.animation_level = "none"
    return app


@pytest.fixture(autouse=True)
def _restore_save_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ChecklistScreen, "SAVE_DELAY", ChecklistScreen.SAVE_DELAY)


class Recorder:
    """Collects the messages the app sees (the pilot's `message_hook`), once each though they bubble."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    def __call__(self, message: Message) -> None:
        if not any(m is message for m in self.messages):
            self.messages.append(message)

    def of(self, kind: type[Message]) -> list[Any]:
        return [m for m in self.messages if isinstance(m, kind)]


async def settle(pilot: Pilot[None]) -> None:
    """Wait for the checklist to be on screen with its answers loaded, and for its workers to finish."""
    app = pilot.app
    await wait_for(pilot, lambda: isinstance(app.screen, ChecklistScreen) and app.screen.loaded,
                   what="the checklist loaded")
    await app.workers.wait_for_complete()
    await pilot.pause()


async def focus(pilot: Pilot[None], path: str) -> Widget:
    """Put the focus on the control answering `path` (that Tab reaches each one is tested on its own)."""
    [widget] = [w for w in pilot.app.screen.focus_chain if w.name == path]
    widget.focus()
    await pilot.pause()
    return widget


def answer_paths(node: Any, prefix: str = "") -> set[str]:
    """Every answer's dotted path, from the stored form of an empty checklist."""
    paths: set[str] = set()
    for key, value in node.items():
        if prefix == "" and key in ("version", "verdict", "baseline", "updated"):
            continue
        if isinstance(value, dict):
            paths |= answer_paths(value, f"{prefix}{key}.")
        else:
            paths.add(prefix + key)
    return paths


def screen(pilot: Pilot[None]) -> ChecklistScreen:
    assert isinstance(pilot.app.screen, ChecklistScreen)
    return pilot.app.screen


def panel_text(pilot: Pilot[None]) -> str:
    panel = pilot.app.screen.query_one(VerdictPanel)
    return " ".join(str(s.render()) for s in panel.query(Static))


async def test_saved_answers_load_into_the_controls_with_their_verdict(home: Path) -> None:
    seed(home)
    rec = Recorder()
    async with console(home).run_test(size=(100, 30), message_hook=rec) as pilot:
        await settle(pilot)
        s = screen(pilot)
        assert s.loaded and len(rec.of(ChecklistScreen.Loaded)) == 1
        boxes = {b.name: b.value for b in s.query(AnswerCheckbox)}
        assert boxes["drivers.domain_knowledge"] and boxes["alternatives.rag.tried"]
        assert not boxes["drivers.small_devices"] and not boxes["data.steps.personal_data"]
        inputs = {i.name: i.value for i in s.query(Input)}
        assert inputs["alternatives.rag.score"] == "0.78" and inputs["metrics.perplexity.target"] == "6"
        assert {t.name: t.direction for t in s.query(DirectionToggle)}["metrics.perplexity.direction"] == "lower"
        assert s.query_one(RadioSet).pressed_index == 0
        verdict, baseline = s.verdict, s.baseline
        assert verdict is not None and verdict.decision == "not yet"
        assert verdict.reasons == ("personal data not handled: scrub names, addresses, phones and e-mails",)
        assert baseline is not None and baseline["source"] == "rag" and baseline["value"] == 0.78
        assert "NOT YET" in panel_text(pilot) and "accuracy 0.78 from retrieval-augmented generation" in \
            panel_text(pilot)
        assert not rec.of(ChecklistScreen.Saved)  # loading is not an edit


async def test_ticking_personal_data_by_keyboard_turns_the_verdict_to_go_and_saves(home: Path) -> None:
    seed(home)
    rec = Recorder()
    async with console(home).run_test(size=(100, 30), message_hook=rec) as pilot:
        await settle(pilot)
        await focus(pilot, "data.steps.personal_data")
        await pilot.press("space")
        await settle(pilot)
        verdict = screen(pilot).verdict
        assert verdict is not None and verdict.decision == "go"
        assert rec.of(ChecklistScreen.Saved)[-1].answers["verdict"]["decision"] == "go"
        assert "GO" in panel_text(pilot) and "NOT YET" not in panel_text(pilot)
        assert screen(pilot).save_state == "saved"
    stored = Store(home).checklist()
    assert stored["data"]["steps"]["personal_data"] is True and stored["verdict"]["decision"] == "go"


async def test_a_better_alternative_score_blocks_and_becomes_the_baseline(home: Path) -> None:
    seed(home, {"drivers.cost_latency": True, "metrics.accuracy.target": 0.85, "data.route": "own",
                "data.steps.personal_data": True, "alternatives.prompt_engineering.tried": True,
                "alternatives.prompt_engineering.score": 0.71})
    rec = Recorder()
    async with console(home).run_test(size=(100, 30), message_hook=rec) as pilot:
        await settle(pilot)
        before = screen(pilot).verdict
        assert before is not None and before.decision == "go"
        await focus(pilot, "alternatives.rag.tried")
        await pilot.press("space", "tab", *"90%")
        await settle(pilot)
        last = screen(pilot)
        assert last.verdict is not None and last.verdict.reasons == (
            "retrieval-augmented generation already meets the accuracy target (0.9 ≥ 0.85)",)
        assert last.baseline == {"metric": "accuracy", "value": 0.9, "source": "rag",
                                 "source_label": "Retrieval-augmented generation", "direction": "higher"}
        # a score that is not a number is shown as invalid and leaves the answer as it was
        await pilot.press("x")
        await settle(pilot)
        assert pilot.app.focused is not None and pilot.app.focused.has_class("-invalid")
        assert screen(pilot).checklist.alternatives["rag"].score == 0.9
    assert Store(home).checklist()["baseline"]["source"] == "rag"


async def test_direction_route_tracking_and_override_by_keyboard(home: Path) -> None:
    seed(home)
    rec = Recorder()
    async with console(home).run_test(size=(100, 30), message_hook=rec) as pilot:
        await settle(pilot)
        await focus(pilot, "metrics.perplexity.direction")
        await pilot.press("space")
        await focus(pilot, "data.route")
        await pilot.press("right", "space")
        await focus(pilot, "compute.gpu")
        await pilot.press(*"1x L4")
        await focus(pilot, "tracking.tool")
        await pilot.press("enter", "down", "down", "enter")  # the menu opens on the blank entry
        await focus(pilot, "decision.override")
        await pilot.press("enter", "down", "enter", "tab", *"legal ok")
        await settle(pilot)
        cl = screen(pilot).checklist
        assert cl.metrics["perplexity"].direction == "higher"
        assert cl.data.route == "existing" and cl.compute.gpu == "1x L4" and cl.tracking.tool == "wandb"
        assert (cl.decision.override, cl.decision.note) == ("go", "legal ok")
        verdict = screen(pilot).verdict
        assert verdict is not None and (verdict.decision, verdict.computed, verdict.overridden) == ("go", "not yet", True)
        assert "GO (your call)" in panel_text(pilot) and "your note: legal ok" in panel_text(pilot)
    stored = Store(home).checklist()
    assert stored["data"]["route"] == "existing" and stored["decision"]["override"] == "go"
    assert stored["metrics"]["perplexity"]["direction"] == "higher"


async def test_tab_and_the_arrows_reach_every_answer_in_order(home: Path) -> None:
    async with console(home).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        chain = [w.name for w in screen(pilot).focus_chain]
        assert set(chain) == answer_paths(ck.to_dict(ck.Checklist()))
        assert len(chain) == len(set(chain)), "one control per answer"
        assert chain.index("drivers.small_devices") < chain.index("alternatives.rag.score") < \
            chain.index("metrics.accuracy.target") < chain.index("data.route") < chain.index("decision.note")
        await pilot.press("tab", "tab", "shift+tab")
        assert pilot.app.focused is not None and pilot.app.focused.name == chain[1]
        await focus(pilot, "drivers.domain_knowledge")
        assert pilot.app.focused is not None and pilot.app.focused.name == "drivers.domain_knowledge"
        await pilot.press("down", "down")
        assert pilot.app.focused.name == "drivers.hallucinations"
        await pilot.press("up")
        assert pilot.app.focused.name == "drivers.output_quality"


async def test_autosave_waits_for_a_pause_and_ctrl_s_saves_at_once(home: Path) -> None:
    rec = Recorder()
    async with console(home, save_delay=60).run_test(size=(100, 30), message_hook=rec) as pilot:
        await settle(pilot)
        await pilot.press("space")
        await settle(pilot)
        assert not rec.of(ChecklistScreen.Saved) and Store(home).checklist() == {}
        assert screen(pilot).save_state == "editing"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert len(rec.of(ChecklistScreen.Saved)) == 1
        assert Store(home).checklist()["drivers"]["domain_knowledge"] is True
        # leaving the screen saves what is pending, and so does closing the console
        await pilot.press("down", "space")
        await pilot.app.push_screen(Screen())
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        assert Store(home).checklist()["drivers"]["output_quality"] is True
        pilot.app.pop_screen()
        await settle(pilot)
        await pilot.press("down", "space")
        assert Store(home).checklist()["drivers"]["hallucinations"] is False
    assert Store(home).checklist()["drivers"]["hallucinations"] is True


async def test_a_failed_save_says_so_in_the_panel(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with console(home).run_test(size=(100, 30)) as pilot:
        await settle(pilot)

        def refuse(answers: dict[str, Any]) -> None:
            raise StoreError("The store is read-only; make HOME writable.")

        monkeypatch.setattr(screen(pilot).store, "save_checklist", refuse)
        await pilot.press("space")
        await settle(pilot)
        assert screen(pilot).save_state == "not saved: The store is read-only; make HOME writable."
        assert screen(pilot).query_one(VerdictPanel).border_subtitle == screen(pilot).save_state


async def test_every_key_is_a_described_binding_shown_in_the_footer(home: Path) -> None:
    async with console(home).run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        active = screen(pilot).active_bindings
        for key in ("down", "up", "ctrl+s", "space"):
            binding = active[key].binding
            assert binding.show and binding.description and binding.tooltip, key
        shown = {(k.key, k.description) for k in screen(pilot).query_one(Footer).query(FooterKey)}
        assert {("down", "Next"), ("up", "Previous"), ("ctrl+s", "Save"), ("space", "Toggle")} <= shown
        await focus(pilot, "metrics.accuracy.direction")
        assert screen(pilot).active_bindings["space"].binding.description == "Flip"


async def test_layout_at_80x24_keeps_the_verdict_and_footer_visible(home: Path) -> None:
    seed(home)
    async with console(home).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        s = screen(pilot)
        panel, footer = s.query_one(VerdictPanel), s.query_one(Footer)
        form = s.query_one("#checklist-form")
        assert footer.region.y == 23 and footer.region.width == 80
        assert panel.region.bottom <= footer.region.y and panel.region.right <= 80
        assert form.region.bottom <= panel.region.y and form.region.height >= 10, "the form keeps room to work in"
        decision = s.query_one("#verdict-decision")
        reasons = s.query_one("#verdict-reasons")
        assert decision.region.height == 1 and panel.region.contains_region(decision.region)
        assert reasons.region.height >= 1 and panel.region.contains_region(reasons.region)
        # every field is a box (3 rows) whose border names it, with its hint inside
        for field in s.query(Input):
            assert field.region.height == 3 and field.border_title, field.name
            assert field.placeholder or field.value, field.name
        # the reasons are whole checkboxes, one a row, the widest label not cut at this width
        for d in ck.DRIVERS:
            box = next(b for b in s.query(AnswerCheckbox) if b.name == f"drivers.{d.key}")
            assert box.region.height == 1 and box.region.right <= form.region.right
            assert d.label in str(box.label)


def _fully_visible(widget: Widget, form: Widget) -> bool:
    return form.region.contains_region(widget.region)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
async def test_tab_and_shift_tab_reach_every_field_and_scroll_it_into_view(home: Path, size: tuple[int, int]) -> None:
    async with console(home).run_test(size=size) as pilot:
        await settle(pilot)
        s = screen(pilot)
        form = s.query_one("#checklist-form")
        chain = [w.name for w in s.focus_chain]
        # the first answer has the focus as soon as the answers are loaded
        assert pilot.app.focused is not None and pilot.app.focused.name == chain[0]
        visited = [chain[0]]
        for _ in chain[1:]:
            await pilot.press("tab")
            await wait_for(pilot, lambda: pilot.app.focused is not None and _fully_visible(pilot.app.focused, form),
                           what=f"the field after {visited[-1]} scrolled into view")
            visited.append(str(pilot.app.focused.name))
        assert visited == chain
        assert s.region.contains_region(s.query_one(VerdictPanel).region)  # the verdict stayed in view
        if size != SIZES[0]:
            return  # backwards once, at the smallest size, where the most scrolling is needed
        for name in reversed(chain[:-1]):
            await pilot.press("shift+tab")
            await wait_for(pilot, lambda: pilot.app.focused is not None and _fully_visible(pilot.app.focused, form),
                           what="the previous field scrolled into view")
            assert pilot.app.focused is not None and pilot.app.focused.name == name


async def test_every_reason_is_reached_and_ticked_by_keyboard_at_80x24(home: Path) -> None:
    async with console(home).run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        s = screen(pilot)
        form = s.query_one("#checklist-form")
        verdict = s.verdict
        assert verdict is not None and "nothing says what drives it: pick at least one reason" in verdict.reasons
        ticked: list[str] = []
        reasons = {f"drivers.{d.key}" for d in ck.DRIVERS} | {f"data.steps.{d.key}" for d in ck.DATA_STEPS}
        for _ in s.focus_chain:
            focused = pilot.app.focused
            assert focused is not None
            if focused.name in reasons:
                assert isinstance(focused, AnswerCheckbox) and _fully_visible(focused, form)
                await pilot.press("space")
                await wait_for(pilot, lambda focused=focused: focused.value, what=f"{focused.name} ticked")
                ticked.append(str(focused.name))
            await pilot.press("tab")
            await pilot.pause()
        assert sorted(ticked) == sorted(reasons)
        cl = s.checklist
        assert all(cl.drivers.values()) and all(cl.data.steps.values())
        verdict = s.verdict
        assert verdict is not None and not any("pick at least one reason" in r for r in verdict.reasons)
        assert not any("personal data" in r for r in verdict.reasons)
        await settle(pilot)
    stored = Store(home).checklist()
    assert all(stored["drivers"].values()) and all(stored["data"]["steps"].values())


async def _loaded_at_top(pilot: Pilot[None]) -> None:
    await settle(pilot)


async def _scrolled_to_the_data_steps(pilot: Pilot[None]) -> None:
    await settle(pilot)
    await focus(pilot, "data.steps.personal_data")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 36)], ids=lambda size: f"{size[0]}x{size[1]}")
def test_snapshot_in_the_console(snap_compare: Any, size: tuple[int, int]) -> None:
    with fixed_home("slmtui-checklist-snapshot") as home:
        seed(home)
        assert snap_compare(console(home), terminal_size=size, run_before=_loaded_at_top)


def test_snapshot_scrolled_to_a_focused_data_step_at_80x24(snap_compare: Any) -> None:
    with fixed_home("slmtui-checklist-snapshot") as home:
        seed(home)
        assert snap_compare(console(home), terminal_size=(80, 24), run_before=_scrolled_to_the_data_steps)
