"""Turning canonical rows into model text, token ids and loss labels.

With `template = "auto"` and a tokenizer that has a chat template, conversations are rendered with it. Else,
or with `template = "default"`, this documented default template is used (BOS only when the tokenizer has one):

    {bos}### System:
    {system prompt}

    ### Instruction:
    {user message}

    ### Response:
    {assistant message}{eos}

(more turns repeat the Instruction/Response blocks). Plain-text rows are `{bos}{text}{eos}`.

By default only the assistant turns are trained (labels elsewhere are -100), each including the template's
end-of-turn marker, so the model learns to stop. If the trained part of a row holds no EOS token (a template
whose end-of-turn token is not the tokenizer's EOS, as in Gemma's), the EOS token is appended and trained, so
generation that stops on EOS reproduces what the model learnt.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from engine.data.shape import Row

IGNORE = -100


@dataclass
class Rendered:
    """A row as text: the whole string, the character spans trained, the prompt and the target."""

    text: str
    trained: list[tuple[int, int]]
    prompt: str
    response: str


def to_messages(row: Row, shape: str, system_prompt: str = "") -> list[dict[str, str]]:
    """The conversation a row stands for (not used for the text shape)."""
    f = row.fields
    if shape == "chat":
        msgs = [dict(m) for m in f["messages"]]
    elif shape == "instruction":
        user = f["instruction"] + (f"\n\n{f['input']}" if f.get("input", "").strip() else "")
        msgs = [{"role": "user", "content": user}, {"role": "assistant", "content": f["output"]}]
    else:
        msgs = [{"role": "user", "content": f["prompt"]}, {"role": "assistant", "content": f["completion"]}]
    if system_prompt and msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": system_prompt})
    return msgs


class Formatter:
    """Renders rows with the tokenizer's chat template or the default one, and tokenises them with labels."""

    def __init__(self, tokenizer: Any, template: str = "auto", train_on_prompt: bool = False) -> None:
        self.tok = tokenizer
        self.train_on_prompt = train_on_prompt
        self.chat_template = getattr(tokenizer, "chat_template", None) if template == "auto" else None
        self.bos = tokenizer.bos_token or ""
        self.eos = tokenizer.eos_token or ""
        self._fast: Any = None
        self._tokens = {k: v for k, v in getattr(tokenizer, "special_tokens_map", {}).items() if isinstance(v, str)}
        if tokenizer.eos_token_id is None:
            from engine.data.options import DataError

            raise DataError("the tokenizer has no EOS token; use a tokenizer that defines one.")

    @property
    def template_name(self) -> str:
        """How rows are rendered, in words."""
        return "the tokenizer's chat template" if self.chat_template else "the default template (### Instruction/Response)"

    def render(self, row: Row, shape: str, system_prompt: str = "") -> Rendered:
        """The row as text with its trained spans; raises `ValueError` when the template rejects it."""
        if shape == "text":
            text = row.fields["text"]
            full = f"{self.bos}{text}{self.eos}"
            return Rendered(full, [(len(self.bos), len(full))], self.bos, text)
        msgs = to_messages(row, shape, system_prompt)
        return self._render_chat(msgs) if self.chat_template else self._render_default(msgs)

    def _render_default(self, msgs: list[dict[str, str]]) -> Rendered:
        parts, trained, prompt = [self.bos], [], ""
        pos = len(self.bos)
        headers = {"system": "### System:\n", "user": "### Instruction:\n", "assistant": "### Response:\n"}
        for msg in msgs:
            head = headers[msg["role"]]
            if msg["role"] == "assistant":
                prompt = "".join(parts) + head
                start = pos + len(head)
                body = msg["content"] + self.eos
                trained.append((start, start + len(body)))
                block = head + body + "\n\n"
            else:
                block = head + msg["content"] + "\n\n"
            parts.append(block)
            pos += len(block)
        text = "".join(parts)
        if trained and not text[trained[-1][1]:].strip():
            text = text[: trained[-1][1]]
        return Rendered(text, trained, prompt, _last_assistant(msgs))

    def _apply(self, msgs: list[dict[str, str]], generation: bool) -> str:
        if self._fast is None:
            self._fast = self._fast_renderer(msgs, generation)
        if self._fast:
            return str(self._fast.render(messages=msgs, add_generation_prompt=generation, **self._tokens))
        return str(self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation))

    def _fast_renderer(self, msgs: list[dict[str, str]], generation: bool) -> Any:
        """The compiled template, rendered directly (apply_chat_template costs ~2x per call on 100k rows);
        used only if it renders this first conversation exactly as `apply_chat_template` does."""
        try:
            from transformers.utils.chat_template_utils import _compile_jinja_template

            compiled = _compile_jinja_template(self.chat_template)
            fast = compiled.render(messages=msgs, add_generation_prompt=generation, **self._tokens)
            slow = self.tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation)
            return compiled if fast == slow else False
        except Exception:  # a private helper that moved, or a template that needs more context
            return False

    def _render_chat(self, msgs: list[dict[str, str]]) -> Rendered:
        try:
            full = self._apply(msgs, False)
        except Exception as exc:  # jinja's TemplateError: e.g. a template that refuses the system role
            if msgs[0]["role"] != "system" or len(msgs) < 2:
                raise ValueError(f"the chat template rejected the conversation: {exc}") from None
            folded = [{"role": msgs[1]["role"], "content": f"{msgs[0]['content']}\n\n{msgs[1]['content']}"},
                      *msgs[2:]]
            return self._render_chat(folded)
        trained: list[tuple[int, int]] = []
        prompt = ""
        for i, msg in enumerate(msgs):
            if msg["role"] != "assistant":
                continue
            before = self._apply(msgs[:i], True)
            upto = full if i == len(msgs) - 1 else self._apply(msgs[: i + 1], False)
            if not full.startswith(before) or not full.startswith(upto):
                raise ValueError("the chat template renders turns inconsistently; use template = \"default\"")
            # The trained span ends with the turn's EOS; what the template adds after it (a newline) is not trained.
            eos_at = upto.rfind(self.eos, len(before)) if self.eos else -1
            end = eos_at + len(self.eos) if eos_at >= 0 else len(upto.rstrip())
            trained.append((len(before), end))
            prompt = before
        if trained and not full[trained[-1][1]:].strip():
            full = full[: trained[-1][1]]  # a newline after the last EOS would only be a masked token
        return Rendered(full, trained, prompt, _last_assistant(msgs))

    def tokenize(self, batch: list[Rendered]) -> list[tuple[list[int], list[int]]]:
        """Token ids and labels for each rendered row (-100 where the loss is masked)."""
        if not batch:
            return []
        texts = [r.text for r in batch]
        backend = getattr(self.tok, "backend_tokenizer", None)
        if backend is not None:
            encodings = backend.encode_batch(texts, add_special_tokens=False)
            pairs = [(e.ids, e.offsets) for e in encodings]
        else:
            enc = self.tok(texts, add_special_tokens=False, return_offsets_mapping=True)
            pairs = list(zip(enc["input_ids"], enc["offset_mapping"], strict=True))
        eos_id = self.tok.eos_token_id
        out = []
        for rendered, (ids, offsets) in zip(batch, pairs, strict=True):
            ids = list(ids)
            labels = list(ids) if self.train_on_prompt else _mask(ids, offsets, sorted(rendered.trained))
            if rendered.trained and eos_id not in _last_trained(labels):
                ids.append(eos_id)
                labels.append(eos_id)
            out.append((ids, labels))
        return out


def _mask(ids: list[int], offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """Labels: a token is trained when it starts inside a trained character span."""
    labels = [IGNORE] * len(ids)
    starts = [start for start, _ in offsets]
    for span_start, span_end in spans:
        i, j = bisect_left(starts, span_start), bisect_left(starts, span_end)
        labels[i:j] = ids[i:j]
    return labels


def _last_assistant(msgs: list[dict[str, str]]) -> str:
    return next((m["content"] for m in reversed(msgs) if m["role"] == "assistant"), "")


def _last_trained(labels: list[int]) -> list[int]:
    """The labels of the last contiguous trained run."""
    end = len(labels)
    while end and labels[end - 1] == IGNORE:
        end -= 1
    start = end
    while start and labels[start - 1] != IGNORE:
        start -= 1
    return labels[start:end]


def segments(rendered: Rendered, limit: int = 2000) -> list[dict[str, Any]]:
    """The rendered text cut into trained and untrained pieces, for a preview with the loss mask visible."""
    out: list[dict[str, Any]] = []
    pos = 0
    for start, end in sorted(rendered.trained):
        if start > pos:
            out.append({"text": rendered.text[pos:start], "trained": False})
        out.append({"text": rendered.text[start:end], "trained": True})
        pos = end
    if pos < len(rendered.text):
        out.append({"text": rendered.text[pos:], "trained": False})
    total = 0
    for seg in out:
        seg["text"] = seg["text"][: max(0, limit - total)]
        total += len(seg["text"])
    return [s for s in out if s["text"]]
