"""`python -m engine generate --model M --prompt TEXT`: stream a model's answer as JSON lines on stdout.

The prompt is rendered as training renders it (the run's template and system prompt for a run or its
adapter; the tokenizer's chat template otherwise; `--raw` sends the text as it is). Lines, in order:
`{"ready": true, "model": M, ...}` once loaded, `{"token": "...", "model": M}` per decoded piece, and
`{"done": true, "model": M, "tokens": n, "tokens_per_s": x, "text": "..."}`. Greedy unless
`--temperature` is above 0. A problem the user can fix is one sentence on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from typing import IO, Any

from engine.data.options import TEMPLATES
from engine.safe_text import safe_json_dumps, visible


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine generate", description=__doc__)
    p.add_argument("--model", required=True, help="hub id, model folder, adapter folder or run folder")
    p.add_argument("--base", action="store_true", help="generate with the base model of --model (a run or adapter)")
    p.add_argument("--prompt", default="-", help="the user message ('-': read it from stdin)")
    p.add_argument("--label", default="", help="the model's name in the output lines (default: --model)")
    p.add_argument("--system-prompt", default=None, help="system prompt (default: the run's, else none)")
    p.add_argument("--template", choices=TEMPLATES, default=None, help="default: the run's, else auto")
    p.add_argument("--raw", action="store_true", help="send the prompt as it is, with no template")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy (the default)")
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp16", "fp32"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    return p


def _write(out: IO[str], obj: dict[str, Any]) -> None:
    out.write(safe_json_dumps(obj) + "\n")
    out.flush()


class JsonLinesStreamer:
    """A transformers streamer (put/end) writing each newly decoded piece of text as a JSON line.

    Decodes the whole answer so far each time and writes what is new, holding back a piece that ends in
    an incomplete multi-byte character.
    """

    def __init__(self, tokenizer: Any, label: str, out: IO[str], stop_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.label = label
        self.out = out
        self.stop_ids = stop_ids
        self.ids: list[int] = []
        self.text = ""
        self.prompt_seen = False
        self.first_token_t: float | None = None

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        if self.first_token_t is None:
            self.first_token_t = time.perf_counter()
        self.ids.extend(int(t) for t in value.reshape(-1).tolist() if int(t) not in self.stop_ids)
        self._flush(final=False)

    def end(self) -> None:
        self._flush(final=True)

    def _flush(self, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True)
        if not final and text.endswith("\ufffd"):
            return
        if text.startswith(self.text) and len(text) > len(self.text):
            _write(self.out, {"token": text[len(self.text) :], "model": self.label})
        self.text = text


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from engine.data.options import DataError
    from engine.modeling import ModelError

    try:
        return run(args, sys.stdout)
    except (ModelError, DataError) as exc:
        print(visible(str(exc)), file=sys.stderr)
        return 1


def run(args: argparse.Namespace, out: IO[str]) -> int:
    """Load, render, generate with streaming; returns the exit status."""
    import torch

    from engine.inference import (
        base_of,
        load_for_inference,
        prompt_token_ids,
        render_prompt,
        resolve_model_ref,
        set_threads,
    )
    from engine.spec import DataSpec
    from engine.train.evaluation import autocast_context

    set_threads(args.threads)
    label = args.label or args.model
    user_text = sys.stdin.read() if args.prompt == "-" else args.prompt
    ref = resolve_model_ref(args.model)
    if args.base:
        ref = base_of(ref)
    im = load_for_inference(ref, args.device, args.precision)
    data = ref.data or DataSpec()
    if args.template is not None:
        data = replace(data, template=args.template)
    if args.system_prompt is not None:
        data = replace(data, system_prompt=args.system_prompt)
    prompt = user_text if args.raw else render_prompt(im.tokenizer, user_text, data)
    ids = prompt_token_ids(im.tokenizer, prompt)
    if not ids:
        print("The prompt is empty; type something to send.", file=sys.stderr)
        return 1
    _write(out, {"ready": True, "model": label, "device": str(im.device), "precision": im.precision.name,
                 "prompt_tokens": len(ids), "load_seconds": round(im.load_seconds, 2)})
    tok = im.tokenizer
    streamer = JsonLinesStreamer(tok, label, out, {tok.eos_token_id, tok.pad_token_id})
    sampling: dict[str, Any] = {"do_sample": False}
    if args.temperature > 0:
        torch.manual_seed(args.seed)
        sampling = {"do_sample": True, "temperature": args.temperature, "top_p": args.top_p}
    input_ids = torch.tensor([ids], device=im.device)
    started = time.perf_counter()
    with torch.no_grad(), autocast_context(im.device, im.precision.autocast):
        result = im.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                   max_new_tokens=args.max_new_tokens, pad_token_id=tok.pad_token_id,
                                   eos_token_id=tok.eos_token_id, streamer=streamer, **sampling)
    seconds = max(time.perf_counter() - started, 1e-9)
    generated = int(result.shape[1] - input_ids.shape[1])
    first = (streamer.first_token_t - started) if streamer.first_token_t else None
    _write(out, {"done": True, "model": label, "tokens": generated, "tokens_per_s": generated / seconds,
                 "seconds": round(seconds, 3), "first_token_s": None if first is None else round(first, 3),
                 "text": streamer.text})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
