"""Bring the store's run index up to date with the run folders, idempotently.

The engine never writes the store: what it learns that belongs in the journal (what was done to the data,
an out-of-memory post-mortem, the measured-against-estimated memory ratio) it writes as events. Any slmtui
process calls `reconcile` to index runs started from anywhere and to turn those events into journal entries,
each keyed by `run:seq` so that doing it twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from engine.paths import HomeError
from engine.protocol import EVENTS_FILE, EventFollower
from slmtui.runs import RunInfo, list_runs
from slmtui.store import RunRecord, Store


@dataclass(frozen=True)
class ReconcileResult:
    """What one pass changed."""

    runs: int
    new_entries: int


def _fmt_gib(value: Any) -> str:
    return f"{value:.2f} GiB" if isinstance(value, int | float) else "n/a"


def journal_items(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The derived journal entries one event yields (most yield none)."""
    run, seq, kind = event.get("run", ""), event.get("seq", -1), event.get("type")
    base = {"run": run or None, "source": f"{run}:{seq}", "created": event.get("t") or None}
    origin = event.get("origin")
    if kind == "started" and isinstance(origin, dict):
        text = f"Imported run, trained elsewhere: read from {origin.get('path')} ({origin.get('format')})."
        return [{**base, "kind": "note", "text": text, "step": 0}]
    if kind == "started":
        data = event.get("data") or {}
        spec = event.get("spec") or {}
        steps = [str(s) for s in data.get("description") or []]
        fingerprint = data.get("fingerprint")
        lines = [f"Data for this run: {spec.get('data', {}).get('path', 'the dataset')}"
                 + (f" (fingerprint {str(fingerprint)[:12]})." if fingerprint else ".")]
        lines += [f"- {s}" for s in steps]
        return [{**base, "kind": "data", "text": "\n".join(lines), "step": 0}]
    if kind == "oom":
        post = event.get("post_mortem") or []
        lines = [f"Out of memory at step {event.get('step')} with batch {event.get('batch_shape')} "
                 f"({_fmt_gib(event.get('mem_at_failure_gib'))} in use); action: {event.get('action')}."]
        for item in post if isinstance(post, list) else []:
            if isinstance(item, dict):
                saves = item.get("saves_gib")
                lines.append(f"- {item.get('change', item)}" + (f" (saves about {saves:.1f} GiB)"
                                                                 if isinstance(saves, int | float) else ""))
        return [{**base, "kind": "oom", "text": "\n".join(lines), "step": event.get("step")}]
    if kind == "rehearsal":
        text = (f"Fit rehearsal: estimated {_fmt_gib(event.get('estimate_gib'))}, measured "
                f"{_fmt_gib(event.get('measured_gib'))} (ratio {event.get('ratio')}); micro-batch "
                f"{event.get('micro_batch')} × accumulation {event.get('grad_accum')}.")
        return [{**base, "kind": "note", "text": text, "step": event.get("step", 0)}]
    if kind == "exported":
        return [{**base, "kind": "note", "text": exported_text(event), "step": None}]
    return []


def exported_text(event: dict[str, Any]) -> str:
    """The journal's sentence for an `exported` event (GGUF export and its parity check)."""
    parity = event.get("parity") or {}
    text = f"Exported to {event.get('format')} ({event.get('quant')}) in {event.get('out')}."
    if not parity.get("checked"):
        return f"{text} Parity check skipped: {parity.get('reason')}"
    ppl = parity.get("perplexity") or {}
    text += (f" Parity with transformers on {parity.get('examples')} test examples: top-1 agreement "
             f"{parity.get('top1_agreement', 0):.1%} ({parity.get('top1_agreement_decisive', 0):.1%} beyond near "
             f"ties), greedy identical {parity.get('greedy_identical')}/"
             f"{parity.get('examples')}, perplexity {ppl.get('llama.cpp', 0):.3f} against "
             f"{ppl.get('transformers', 0):.3f}, chat template "
             + ("identical." if parity.get("chat_template_identical") else "different."))
    problems = parity.get("problems") or []
    return text + ("".join(f"\n- {p}" for p in problems) if problems else "")


def _record(info: RunInfo, previous: RunRecord | None, started: dict[str, Any] | None,
            last_seq: int, offset: int) -> RunRecord:
    base = previous or RunRecord(id=info.id, dir=str(info.dir), status=info.status)
    fields: dict[str, Any] = {
        "dir": str(info.dir), "status": info.status, "started": info.started, "ended": info.ended,
        "name": info.name, "latest": info.latest, "best": info.best, "last_seq": last_seq, "events_offset": offset,
    }
    if started is not None:
        spec = started.get("spec") or {}
        fields["model"] = str((spec.get("model") or {}).get("name", ""))
        fields["method"] = str((spec.get("method") or {}).get("kind", ""))
        env = started.get("env") or {}
        fields["fingerprint"] = {"data": (started.get("data") or {}).get("fingerprint"), "env": env,
                                 "precision": started.get("precision"), "device": started.get("device")}
    return replace(base, **fields)


def reconcile(store: Store, runs_dir: Path, infos: Iterable[RunInfo] | None = None) -> ReconcileResult:
    """Index every run folder and derive journal entries from the events not seen yet."""
    known = {r.id: r for r in store.runs()}
    records: list[RunRecord] = []
    items: list[dict[str, Any]] = []
    for info in list_runs(runs_dir) if infos is None else infos:
        previous = known.get(info.id)
        follower = EventFollower(info.dir / EVENTS_FILE, offset=previous.events_offset if previous else 0)
        last_seq = previous.last_seq if previous else -1
        started: dict[str, Any] | None = None
        for event in follower:
            seq = event.get("seq", -1)
            if not isinstance(seq, int) or seq <= last_seq:
                continue
            last_seq = seq
            if event.get("type") == "started":
                started = event
            items.extend(journal_items(event))
        offset = follower.complete_offset  # a torn last line is read again next time
        record = _record(info, previous, started, last_seq, offset)
        if record != previous:
            records.append(record)
    if records:
        store.upsert_runs(records)
    added = store.add_entries(items) if items else 0
    return ReconcileResult(runs=len(records), new_entries=added)


def reconcile_home(infos: Iterable[RunInfo] | None = None) -> str | None:
    """Reconcile HOME's store with its runs folder; returns a one-sentence warning instead of raising.

    Listing runs must work even when the store cannot be read: the run folders are the source of truth.
    """
    from slmtui.home import runs_dir, slmtui_home
    from slmtui.store import StoreError

    try:
        reconcile(Store(slmtui_home()), runs_dir(), infos)
    except (StoreError, HomeError) as exc:  # a read-only HOME can still be listed
        return str(exc)
    return None
