"""The playground: type a prompt, and the base and the fine-tuned model answer side by side, streamed.

Each side is one `python -m engine generate` process driven by `slmtui.playground` in a worker; every decoded
piece comes back as a message and is appended to its pane. `escape` goes back to the shortlist.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import get_current_worker

from engine.safe_text import visible, visible_line
from slmtui.playground import GenerationFailed, GenerationRequest, Pair, stream_generation
from slmtui.ui.footer import FittingFooter
from slmtui.ui.themes import stylesheet
from slmtui.ui.workers import ReportsWorkerFailures

SIDES = ("left", "right")


class AnswerPane(Vertical):
    """One model's answer: its name and speed on top, the streamed text below; model output is shown as plain
    text with its control characters visible, never as markup or terminal commands."""

    text: reactive[str] = reactive("")
    """The answer so far."""
    caption: reactive[str] = reactive("")
    """The model's name and what it is doing."""

    def compose(self) -> ComposeResult:
        yield Static("", classes="answer-caption")
        yield Static("", classes="answer-text")

    def watch_text(self, text: str) -> None:
        self.query_one(".answer-text", Static).update(Content(visible(text)))

    def watch_caption(self, caption: str) -> None:
        self.query_one(".answer-caption", Static).update(Content(visible_line(caption)))


class PlaygroundScreen(ReportsWorkerFailures, Screen[None]):
    """Two models, one prompt, answers streamed side by side."""

    CSS_PATH: ClassVar = [stylesheet("shortlist.tcss")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="playground.back", tooltip="Back to the shortlist"),
        Binding("ctrl+r", "toggle_sampling", "Sampling", id="playground.sampling",
                tooltip="Switch between greedy decoding and sampling (temperature 0.7)"),
        Binding("ctrl+b", "stop", "Stop", id="playground.stop", tooltip="Stop both generations"),
    ]

    sampling: reactive[bool] = reactive(False)
    """Sample (temperature 0.7) instead of greedy decoding."""

    @dataclass
    class TokenStreamed(Message):
        """A piece of one side's answer."""

        side: str
        token: str

    @dataclass
    class AnswerStarted(Message):
        """One side's model is loaded and generating."""

        side: str
        device: str

    @dataclass
    class AnswerFinished(Message):
        """One side's answer is complete."""

        side: str
        text: str
        tokens: int
        tokens_per_s: float

    @dataclass
    class AnswerFailed(Message):
        """One side could not answer; `reason` is one sentence."""

        side: str
        reason: str

    def __init__(self, pair: Pair, max_new_tokens: int = 64) -> None:
        super().__init__()
        self.pair = pair
        self.max_new_tokens = max_new_tokens
        self.answers: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        yield Static(Content(visible_line(f"Playground: {self.pair.left.label}  ·  {self.pair.right.label}")),
                     id="playground-title")
        yield Input(placeholder="type a prompt and press enter", id="playground-prompt")
        with Horizontal(id="playground-answers"):
            for side in SIDES:
                yield AnswerPane(id=f"answer-{side}", classes="answer")
        yield FittingFooter()

    def on_mount(self) -> None:
        for side in SIDES:
            self.pane(side).caption = self.request(side).label
        self.query_one("#playground-prompt", Input).focus()

    def pane(self, side: str) -> AnswerPane:
        return self.query_one(f"#answer-{side}", AnswerPane)

    def request(self, side: str) -> GenerationRequest:
        return self.pair.left if side == "left" else self.pair.right

    @on(Input.Submitted, "#playground-prompt")
    def _prompt_submitted(self, event: Input.Submitted) -> None:
        if not event.value.strip():
            return
        self.ask(event.value)

    def ask(self, prompt: str) -> None:
        """Send `prompt` to both models (any answers in progress are stopped first)."""
        for side in SIDES:
            request = replace(self.request(side), prompt=prompt, max_new_tokens=self.max_new_tokens,
                              temperature=0.7 if self.sampling else 0.0)
            self.answers[side] = ""
            self.pane(side).text = ""
            self.pane(side).caption = f"{request.label}: loading..."
            self._generate(side, request)

    def _generate(self, side: str, request: GenerationRequest) -> None:
        self.run_worker(lambda: self._stream(side, request), thread=True, exclusive=True, exit_on_error=False,
                        group=f"playground-{side}", name=f"Generating with {request.label}")

    def _stream(self, side: str, request: GenerationRequest) -> None:
        worker = get_current_worker()

        def on_line(line: dict[str, Any]) -> None:
            if worker.is_cancelled:
                return
            if "token" in line:
                self.post_message(self.TokenStreamed(side, str(line["token"])))
            elif line.get("ready"):
                self.post_message(self.AnswerStarted(side, str(line.get("device", ""))))
            elif line.get("done"):
                self.post_message(self.AnswerFinished(side, str(line.get("text", "")), int(line.get("tokens", 0)),
                                                      float(line.get("tokens_per_s", 0.0))))

        try:
            stream_generation(request, on_line, should_stop=lambda: worker.is_cancelled)
        except GenerationFailed as exc:
            if not worker.is_cancelled:
                self.post_message(self.AnswerFailed(side, str(exc)))

    def on_playground_screen_token_streamed(self, message: TokenStreamed) -> None:
        self.answers[message.side] = self.answers.get(message.side, "") + message.token
        self.pane(message.side).text = self.answers[message.side]

    def on_playground_screen_answer_started(self, message: AnswerStarted) -> None:
        self.pane(message.side).caption = f"{self.request(message.side).label}: generating on {message.device}"

    def on_playground_screen_answer_finished(self, message: AnswerFinished) -> None:
        self.answers[message.side] = message.text
        pane = self.pane(message.side)
        pane.text = message.text if message.text.strip() else (
            f"(nothing visible: its {message.tokens} tokens were only blank or special tokens; an untrained or "
            "very small model often answers so)")
        pane.caption = f"{self.request(message.side).label}: {message.tokens} tokens, {message.tokens_per_s:,.0f} tok/s"

    def on_playground_screen_answer_failed(self, message: AnswerFailed) -> None:
        self.pane(message.side).caption = f"{self.request(message.side).label}: failed"
        self.pane(message.side).text = message.reason

    def action_toggle_sampling(self) -> None:
        """Greedy decoding or sampling for the next prompt."""
        self.sampling = not self.sampling
        self.notify("Sampling at temperature 0.7." if self.sampling else "Greedy decoding.", timeout=3)

    def action_stop(self) -> None:
        """Stop both generations."""
        for side in SIDES:
            self.workers.cancel_group(self, f"playground-{side}")

    def action_back(self) -> None:
        """Stop any generation and return."""
        self.action_stop()
        self.dismiss(None)
