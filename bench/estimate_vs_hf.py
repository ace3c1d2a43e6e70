"""Measure peak GPU memory of plain HF + PEFT training steps and compare with `engine.estimate`.

Each case runs in a fresh subprocess (a clean allocator): random weights from the shape's config (nothing is
downloaded), bf16 weights under bf16 autocast as HF Trainer runs them, sdpa, fused AdamW, the model's own
(standard) loss, three steps; peak reserved and allocated as PyTorch reports them.

    python bench/estimate_vs_hf.py [--out results.jsonl] [--cases NAME,...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CASES = {  # name: (catalog model, method, batch, seq, gradient checkpointing)
    "0.5b-lora-8x1024": ("qwen2.5-0.5b", "lora", 8, 1024, False),
    "0.5b-full-16x512": ("qwen2.5-0.5b", "full", 16, 512, False),
    "0.5b-dora-8x1024": ("qwen2.5-0.5b", "dora", 8, 1024, False),
    "1.5b-lora-8x1024": ("qwen2.5-1.5b", "lora", 8, 1024, False),
    "1.5b-full-8x1024": ("qwen2.5-1.5b", "full", 8, 1024, False),
    "1.5b-lora-ckpt-8x2048": ("qwen2.5-1.5b", "lora", 8, 2048, True),
    "1.5b-dora-4x2048": ("qwen2.5-1.5b", "dora", 4, 2048, False),
    "1.5b-qlora-8x1024": ("qwen2.5-1.5b", "qlora", 8, 1024, False),
    "0.5b-qlora-16x512": ("qwen2.5-0.5b", "qlora", 16, 512, False),
    "1.5b-qdora-4x2048": ("qwen2.5-1.5b", "qdora", 4, 2048, False),
}


def measure(model_name: str, method: str, batch: int, seq: int, ckpt: bool) -> dict[str, float]:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from engine.catalog import load_catalog

    entry = load_catalog().model(model_name)
    assert entry is not None
    s = entry.shape
    config = AutoConfig.for_model(
        "qwen2", hidden_size=s.hidden_size, num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads, num_key_value_heads=s.num_key_value_heads,
        intermediate_size=s.intermediate_size, vocab_size=s.vocab_size, tie_word_embeddings=s.tie_word_embeddings,
        max_position_embeddings=32768)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16, attn_implementation="sdpa")
    if method in ("qlora", "qdora"):  # quantising needs from_pretrained: save the random model, load it in 4 bits
        import tempfile

        from transformers import BitsAndBytesConfig

        folder = tempfile.mkdtemp()
        model.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=torch.bfloat16,
                                                     attn_implementation="sdpa", device_map={"": 0})
        torch.cuda.empty_cache()
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if method != "full":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                 lora_dropout=0.0, use_dora=method in ("dora", "qdora")))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=True)
    gen = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    for _ in range(3):
        ids = torch.randint(0, s.vocab_size, (batch, seq), device="cuda", generator=gen)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return {"reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
            "allocated_gib": torch.cuda.max_memory_allocated() / 2**30}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*CASES[args.one])))
        return 0
    from engine.catalog import load_catalog
    from engine.estimate import estimate_peak_memory

    for name in args.cases.split(","):
        model_name, method, batch, seq, ckpt = CASES[name]
        proc = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True)
        if proc.returncode != 0:
            row = {"case": name, "error": proc.stderr.strip().splitlines()[-1:]}
        else:
            measured = json.loads(proc.stdout.strip().splitlines()[-1])
            shape = load_catalog().model(model_name).shape  # type: ignore[union-attr]
            est = estimate_peak_memory(shape, method=method, batch=batch, seq=seq, gradient_checkpointing=ckpt,
                                       loss="standard")
            live = est.total_gib - est.breakdown["allocator overhead"] - est.breakdown["cuda context"]
            row = {"case": name, **{k: round(v, 2) for k, v in measured.items()},
                   "estimate_gib": est.total_gib, "estimate_live_gib": round(live, 2),
                   "error_vs_reserved": round(est.total_gib / measured["reserved_gib"] - 1, 3),
                   "live_error_vs_allocated": round(live / measured["allocated_gib"] - 1, 3)}
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
