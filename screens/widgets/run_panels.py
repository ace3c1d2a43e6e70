"""The monitor's panels: run figures, metric sparklines, device memory, eval generations, the OOM banner.

Each takes a `RunView` (and the memory panel a GPU reading) from the screen and renders it; none posts data
anywhere. Text only here: colours come from themes/monitor.tcss through CSS classes.
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Label, Sparkline, Static

from engine.eta import format_duration
from engine.safe_text import visible, visible_line
from slmtui.monitor_data import EMPTY_VIEW, RunView


def _num(value: Any, fmt: str = ".4f") -> str:
    return format(value, fmt) if isinstance(value, int | float) else "-"


def _bar(fraction: float, width: int = 20) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "█" * filled + "░" * (width - filled)


def _v(value: Any) -> str:
    """A value from the run's files (a status, a device, a message) as one plain line, controls visible."""
    return visible_line(value)


def _device_words(started: dict[str, Any]) -> str:
    """Where the run trains: `the CPU`, `cuda:0`, or on several processes `2×CPU DDP`, `8×GPU FSDP`."""
    device, processes = started.get("device"), started.get("devices")
    if isinstance(processes, int) and processes > 1:
        kind = "CPU" if device == "cpu" else "GPU"
        return f"{processes}×{kind} {_v(started.get('strategy') or '').upper()}".rstrip()
    return "the CPU" if device == "cpu" else _v(device or "?")


def _whose_memory(view: RunView) -> str:
    """Whose memory the figures are: the engine's, or on several processes rank 0's."""
    processes = (view.started or {}).get("devices")
    return "rank 0" if isinstance(processes, int) and processes > 1 else "engine"


def _params_trained(trainable: Any, total: Any) -> str:
    """`trains 10.5% of 623,232 weights` (short enough for the Monitor at 80 columns)."""
    if not (isinstance(trainable, int) and isinstance(total, int) and total):
        return "trains -"
    share = trainable / total
    return f"trains {share:.{1 if share >= 0.01 else 2}%} of {total:,} weights"


def packing_words(packing: Any) -> str:
    """How the run's batches are made, from the `started` event's `packing`, in a word for the throughput line:
    "packed", or padding's share of a padded batch (what `train.packing` would save); "" when there is nothing to
    say."""
    if not isinstance(packing, dict):
        return ""
    if packing.get("on"):
        return "packed"
    ratio = packing.get("ratio")
    waste = 1 - float(ratio) if isinstance(ratio, int | float) else 0.0
    return f"{waste:.0%} padding" if waste >= 0.005 else ""


def _lines(lines: list[Content | str]) -> Content:
    """Lines as one `Content`: never markup, so the text from the run's files shows as it is."""
    return Content("\n").join(lines)


def stats_text(view: RunView, now: float | None = None) -> Content:
    """The figures block: status, progress, loss, validation, lr, grad norm, throughput, ETA; at `now` (wall
    time, default the clock's): the ETA runs down and a stall shows, between events too."""
    now = time.time() if now is None else now
    if not view.run_id:
        return Content("No run chosen. Pick one from the list (r), or start one with `slmtui demo` or `slmtui train`.")
    latest = view.latest
    total = view.total_steps
    lines: list[Content | str] = [Content.assemble((_v(view.run_id), "bold"), f"  {_v(view.status)}")]
    news = _run_news(view, now)
    if news:  # how it ended, or that it stalled: second, where even a small panel shows it
        lines.append(news)
    if total:
        lines.append(f"step {view.step:,}/{total:,} {_bar(view.step / total, 12)} {100 * view.step / total:.0f}%")
    else:
        lines.append(f"step {view.step:,}")
    val = view.val_loss[-1].mean if view.val_loss else None
    best = min((p.low for p in view.val_loss), default=None)
    lines.append(f"loss {_num(latest.get('loss'))}  val {_num(val)}  best {_num(best)}")
    lines.append(f"lr {_num(latest.get('lr'), '.2e')}  grad norm {_num(latest.get('grad_norm'), '.3f')}")
    batches = packing_words((view.started or {}).get("packing"))
    lines.append(f"{_num(latest.get('tokens_per_s'), ',.0f')} tok/s{f' ({batches})' if batches else ''}  "
                 f"{_num(latest.get('samples_per_s'), ',.1f')} samples/s  epoch {_num(latest.get('epoch'), '.2f')}")
    if view.eta is not None:
        eta = view.eta.at_time(now)
        lines.append(f"ETA {format_duration(eta.seconds)} ({format_duration(eta.low)}-{format_duration(eta.high)})")
    elif view.status == "running":
        lines.append("ETA after a few steps")
    started = view.started or {}
    if started:
        lines.append(f"{_v(started.get('precision', '?'))} on {_device_words(started)}; "
                     f"{_params_trained(started.get('params_trainable'), started.get('params_total'))}")
        if ((started.get("spec") or {}).get("model") or {}).get("trust_remote_code"):
            lines.append(Content.assemble(("trust_remote_code is ON", "bold $warning"),
                                          ": this run executes code from the model's repository"))
    return _lines(lines)


def _run_news(view: RunView, now: float) -> str:
    """How the run ended, that its history is still being read, or that no event came for a while; else ""."""
    if view.message and view.status != "running":
        return visible(view.message)
    if not view.loaded:
        return f"reading the history... {view.events:,} events"
    if view.status == "running" and view.last_event_t and now - view.last_event_t > 30:
        return f"no event for {format_duration(now - view.last_event_t)}"
    return ""


def memory_text(view: RunView, gpu: dict[str, Any] | None) -> Content:
    """Memory: the engine's torch figures (GPUs), its resident RAM (what a CPU run is bounded by), and NVML's
    used against total, with the headroom."""
    latest = view.latest
    alloc, reserved, peak = (latest.get(k) for k in ("mem_allocated_gib", "mem_reserved_gib", "mem_peak_gib"))
    device = _v((view.started or {}).get("device", ""))
    rss, rss_peak = latest.get("rss_gib"), latest.get("rss_peak_gib")
    lines: list[Content | str] = []
    if any(isinstance(v, int | float) for v in (alloc, reserved, peak)):
        whose = "rank 0 torch" if _whose_memory(view) == "rank 0" else "torch"
        lines.append(f"{whose} {_num(alloc, '.2f')} alloc · {_num(reserved, '.2f')} reserved · "
                     f"{_num(peak, '.2f')} peak GiB")
    if isinstance(rss, int | float):
        lines.append(f"{_whose_memory(view)} RAM {rss:.2f} GiB · peak {_num(rss_peak, '.2f')} GiB")
    if not lines:
        lines.append("memory: not reported yet" + (f" (on {device})" if device else ""))
    if gpu and isinstance(gpu.get("total_gib"), int | float) and isinstance(gpu.get("used_gib"), int | float):
        used, total = gpu["used_gib"], gpu["total_gib"]
        lines.append(f"GPU {_v(gpu.get('index', 0))} {_bar(used / total if total else 0, 10)} "
                     f"{used:.1f}/{total:.0f} GiB · headroom {total - used:.1f} GiB")
    elif gpu and gpu.get("error"):
        lines.append(f"no GPU: {_v(str(gpu['error']).split(':')[0])}")
    else:
        lines.append("GPU: not read yet")
    return _lines(lines)


def generations_text(view: RunView) -> Content:
    """The latest evaluation's generations: prompt tail, the model's output, the reference."""
    evaluation = view.last_eval
    if not evaluation:
        return Content("No evaluation yet.")
    lines: list[Content | str] = [Content.assemble(
        (f"step {_v(evaluation.get('step'))}", "bold"),
        f": validation loss {_num(evaluation.get('val_loss'))}, perplexity {_num(evaluation.get('perplexity'), '.2f')}")]
    for i, sample in enumerate(evaluation.get("samples") or [], 1):
        if not isinstance(sample, dict):
            continue
        prompt = " ".join(str(sample.get("prompt", "")).split())[-90:]
        lines.append(Content.assemble((f"{i}.", "bold"), f" …{_v(prompt)}"))
        lines.append(f"   → {_v(' '.join(str(sample.get('output', '')).split())[:200])}")
        if sample.get("reference"):
            lines.append(f"   ✓ {_v(' '.join(str(sample['reference']).split())[:200])}")
    return _lines(lines)


def oom_text(oom: dict[str, Any]) -> Content:
    """The OOM banner: what happened, what the engine did, the post-mortem's ranked changes."""
    raw = oom.get("post_mortem")
    post: dict[str, Any] = raw if isinstance(raw, dict) else {}
    lines: list[Content | str] = [Content.assemble((f"Out of memory at step {_v(oom.get('step', '?'))}", "bold"),
                                                   f": {_v(oom.get('message', ''))}")]
    facts = [f"batch {_v(oom.get('batch_shape'))}" if oom.get("batch_shape") else "",
             f"longest sequence {_v(oom.get('longest_seq'))}" if oom.get("longest_seq") else "",
             f"{oom['mem_at_failure_gib']:.2f} GiB at failure" if isinstance(oom.get("mem_at_failure_gib"), int | float)
             else "", f"action: {_v(oom.get('action'))}" if oom.get("action") else ""]
    if any(facts):
        lines.append("  ".join(f for f in facts if f))
    for change in (post.get("changes") or [])[:4]:
        if isinstance(change, dict):
            saves = change.get("saves_gib")
            lines.append(f"  • {_v(change.get('change', ''))}"
                         + (f" (saves {saves:.2f} GiB)" if isinstance(saves, int | float) else ""))
    if isinstance(post.get("suggested_spec"), dict):
        lines.append("Press n to open the suggested spec in New run.")
    return _lines(lines)


class RunStats(Static):
    """The run's figures."""

    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True)
    now: reactive[float] = reactive(0.0)
    """The screen's clock (wall time; 0: not read yet), so the ETA and the stall line age between events."""

    def watch_view(self, view: RunView) -> None:
        self._refresh_text()
        self.set_class(view.status in ("failed", "oom", "crashed"), "-bad")

    def watch_now(self) -> None:
        self._refresh_text()

    def _refresh_text(self) -> None:
        self.update(stats_text(self.view, self.now or None))


class MetricSparks(Vertical):
    """Learning rate, gradient norm and tokens/s over the last steps."""

    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True)

    def compose(self) -> ComposeResult:
        for name, label in (("lr", "lr"), ("grad_norm", "grad norm"), ("tokens_per_s", "tok/s")):
            with Horizontal(classes="spark-row"):
                yield Label(label, classes="spark-label")
                yield Sparkline([], id=f"spark-{name.replace('_', '-')}", classes="spark")

    def watch_view(self, view: RunView) -> None:
        for name in ("lr", "grad_norm", "tokens_per_s"):
            self.query_one(f"#spark-{name.replace('_', '-')}", Sparkline).data = getattr(view, name)


class MemoryPanel(Static):
    """Device memory with headroom."""

    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True)
    gpu: reactive[dict[str, Any] | None] = reactive(None, always_update=True)
    """The run's GPU as NVML last saw it: `index`, `used_gib`, `total_gib`, or `error`."""

    def _refresh_text(self) -> None:
        self.update(memory_text(self.view, self.gpu))

    def watch_view(self) -> None:
        self._refresh_text()

    def watch_gpu(self) -> None:
        self._refresh_text()


class GenerationsPanel(Static):
    """What the model wrote at the latest evaluation."""

    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True)

    def watch_view(self, view: RunView) -> None:
        self.update(generations_text(view))


class OomBanner(Static):
    """Shown only when the run reported an out-of-memory error."""

    view: reactive[RunView] = reactive(EMPTY_VIEW, always_update=True)

    def watch_view(self, view: RunView) -> None:
        self.display = view.oom is not None
        if view.oom is not None:
            self.update(oom_text(view.oom))
