"""Training throughput and peak memory: the engine's training step against plain HF Trainer + PEFT.

Same random-init model of a catalog shape (nothing downloaded), same fixed-length random token data (no padding,
so no side wins by packing), same micro-batch and no accumulation, bf16, sdpa attention, AdamW, LoRA r=16
alpha=32 dropout 0.05 on all linear layers. The engine runs `engine.train.loop.Trainer.train_step` with its own
defaults on a GPU (fused chunked loss, fp32 adapters, fp32 master weights for full fine-tuning); HF Trainer runs
the usual recipe: a bf16 model, `bf16=True`, fused AdamW, and for QLoRA `prepare_model_for_kbit_training`
without gradient checkpointing. Each case runs in its own process (a clean allocator); tokens/s is timed over
the steps after the warm-up, with the GPU synchronised at both ends.

`--lengths real` runs instead the four runners of bench/real_lengths.py (engine padded and packed, HF Trainer as
first run and at its best) on examples of real lengths, and counts target tokens only.

    python bench/train_throughput.py --case '{"runner": "engine", "model": "qwen2.5-0.5b", "method": "lora"}'
    python bench/train_throughput.py --lengths real --smoke     # every real-length runner on a CPU
    python bench/gpu_suite.py            # every case of this bench and of estimate_accuracy.py, in one go
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import real_lengths
from bench.log_overhead import Row  # an example as the engine sees it
from bench.real_lengths import (
    MEDIAN,
    P99,
    CountingCollator,
    hf_recipe,
    padding_ratio,
    real_rows,
    row_targets,
    sample_lengths,
)

METHODS = ("lora", "qlora", "dora", "full")
#: Defaults of a case; `--smoke` shrinks the model and batch so the whole suite runs on a CPU in a minute.
DEFAULTS: dict[str, Any] = {"batch": 8, "seq": 1024, "warmup": 2, "steps": 6, "rank": 16, "alpha": 32,
                            "dropout": 0.05, "lr": 2e-4}
SMOKE = {"model": "tiny", "batch": 2, "seq": 64, "warmup": 1, "steps": 2}


def hf_config(model: str) -> Any:
    """A transformers config of a catalog shape (Qwen2-style), or a tiny one for smoke runs."""
    from transformers import AutoConfig

    if model == "tiny":
        return AutoConfig.for_model("qwen2", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                    num_key_value_heads=2, intermediate_size=128, vocab_size=512,
                                    tie_word_embeddings=True, max_position_embeddings=2048)
    from engine.catalog import load_catalog

    entry = load_catalog().model(model)
    if entry is None:
        raise SystemExit(f"unknown catalog model {model}")
    s = entry.shape
    return AutoConfig.for_model(
        "qwen2", hidden_size=s.hidden_size, num_hidden_layers=s.num_hidden_layers,
        num_attention_heads=s.num_attention_heads, num_key_value_heads=s.num_key_value_heads,
        intermediate_size=s.intermediate_size, vocab_size=s.vocab_size, tie_word_embeddings=s.tie_word_embeddings,
        max_position_embeddings=32768)


def model_folder(config: Any, root: Path) -> Path:
    """A folder with the config and a small tokenizer (the engine loads both; the weights are random)."""
    from engine.tiny import train_tokenizer

    folder = root / "model"
    config.save_pretrained(folder)
    train_tokenizer([f"bench text {i} tokens" for i in range(200)], vocab_size=300).save_pretrained(folder)
    return folder


def random_rows(n: int, seq: int, vocab: int, seed: int = 0) -> list[Row]:
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, seq), generator=gen).tolist()
    return [Row(row, row) for row in ids]


def case_rows(case: dict[str, Any], vocab: int) -> list[Row]:
    """The examples of every step of a case, in order: fixed-length random rows, or `lengths = real` ones."""
    n = case["batch"] * (case["warmup"] + case["steps"])
    if case.get("lengths") == "real":
        return real_rows(n, case["seq"], vocab, case.get("median", MEDIAN), case.get("p99", P99))
    return random_rows(n, case["seq"], vocab)


def _peak(device: Any) -> dict[str, float | None]:
    """Peak memory of training: the GPU allocator's, and the process's peak RSS (on a CPU, the only one)."""
    import resource

    import torch

    rss = {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)}
    if device.type != "cuda":
        return {"peak_reserved_gib": None, "peak_allocated_gib": None, **rss}
    return {"peak_reserved_gib": round(torch.cuda.max_memory_reserved(device) / 2**30, 3),
            "peak_allocated_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 3), **rss}


def _fresh_peak(device: Any) -> None:
    """Forget what loading cost (both runners): the peaks are those of training."""
    import torch

    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_engine(case: dict[str, Any], root: Path) -> dict[str, Any]:
    from engine.modeling import load_for_training
    from engine.spec import RunSpec
    from engine.train.loop import Trainer
    from engine.train.packing import attention_of, choose_packer, use_varlen_attention
    from engine.train.speedups import use_kernels

    packed = case["runner"] == "engine-packed"  # the engine's defaults: flash-attn's varlen and Liger where it can
    config = hf_config(case["model"])
    spec = RunSpec(name="bench")
    spec.model.name, spec.model.init = str(model_folder(config, root)), "random"
    spec.model.attn_implementation = "" if packed else "sdpa"
    spec.method.kind, spec.method.rank, spec.method.alpha = case["method"], case["rank"], float(case["alpha"])
    spec.method.dropout = case["dropout"]
    spec.train.micro_batch, spec.train.lr, spec.train.schedule = case["batch"], case["lr"], "constant"
    spec.train.device, spec.train.packing = case.get("device", "auto"), "auto" if packed else "off"
    spec.data.max_length = case["seq"]
    loaded = load_for_training(spec)
    _fresh_peak(loaded.device)
    total = case["warmup"] + case["steps"]
    rows = case_rows(case, config.vocab_size)
    trainer = Trainer(loaded, spec, rows, [], total_steps=total, shuffle=False)
    kernels = packed and use_kernels(spec.train.kernels, trainer.model, loaded.device.type, print)
    trainer.packer = choose_packer(spec, trainer.model, print)
    if trainer.packer:
        use_varlen_attention(spec, loaded, trainer.packer, print)
    for _ in range(case["warmup"]):
        trainer.train_step()
    _sync(loaded.device)
    started = time.perf_counter()
    for _ in range(case["steps"]):
        result = trainer.train_step()
    _sync(loaded.device)
    seconds = time.perf_counter() - started
    timed = rows[case["batch"] * case["warmup"]:]  # the engine takes the rows in order, `batch` a step
    return {"loss": result.loss.item(), "seconds": seconds, "loss_kind": trainer.loss_kind,
            "precision": loaded.precision.name, "params_trainable": loaded.params_trainable,
            "targets": sum(row_targets(r.labels) for r in timed), "recipe": ("packed" if trainer.packer else "padded") + ("+liger" if kernels else ""),
            "attention": attention_of(trainer.model), **_peak(loaded.device)}


def run_hf(case: dict[str, Any], root: Path) -> dict[str, Any]:
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig, TrainerCallback, TrainingArguments
    from transformers import Trainer as HFTrainer

    cuda = torch.cuda.is_available() and case.get("device", "auto") != "cpu"
    device = torch.device("cuda:0" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    config = hf_config(case["model"])
    collate, attention, recipe_args, recipe = hf_recipe(case["runner"], cuda, model_folder(config, root))
    collator = CountingCollator(collate)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation=attention)
    if case["method"] in ("qlora", "qdora"):  # bitsandbytes quantises while loading: save the random model first
        folder = root / "weights"
        model.save_pretrained(folder)
        del model
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=dtype)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quant, dtype=dtype,
                                                     attn_implementation=attention, device_map={"": str(device)})
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if case["method"] != "full":
        model = get_peft_model(model, LoraConfig(r=case["rank"], lora_alpha=case["alpha"], lora_dropout=case["dropout"],
                                                 target_modules="all-linear", task_type="CAUSAL_LM",
                                                 use_dora=case["method"] in ("dora", "qdora")))
    _fresh_peak(device)
    total = case["warmup"] + case["steps"]
    tensors = case["runner"] == "hf"  # the default collator stacks tensors; the others pad or flatten lists
    data = [{"input_ids": torch.tensor(r.input_ids) if tensors else r.input_ids,
             "labels": torch.tensor(r.labels) if tensors else r.labels} for r in case_rows(case, config.vocab_size)]
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *args: Any, **kwargs: Any) -> None:
            _sync(device)
            stamps.append(time.perf_counter())

    args = TrainingArguments(output_dir=str(root / "hf"), per_device_train_batch_size=case["batch"],
                             gradient_accumulation_steps=1, max_steps=total, learning_rate=case["lr"],
                             lr_scheduler_type="constant", bf16=cuda, logging_steps=10**6, save_strategy="no",
                             report_to=[], dataloader_num_workers=0, remove_unused_columns=False,
                             optim="adamw_torch_fused" if cuda else "adamw_torch", use_cpu=not cuda,
                             disable_tqdm=True, train_sampling_strategy="sequential", **recipe_args)
    trainer = HFTrainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[Clock()])
    out = trainer.train()
    seconds = stamps[-1] - stamps[case["warmup"] - 1]
    return {"loss": out.training_loss, "seconds": seconds, "loss_kind": "standard (HF)",
            "precision": "bf16" if cuda else "fp32", "recipe": recipe, "attention": attention,
            "targets": sum(collator.targets[case["warmup"]:total]),
            "params_trainable": sum(p.numel() for p in model.parameters() if p.requires_grad), **_peak(device)}


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    """One case in this process: its figures, tokens/s included."""
    import torch

    torch.manual_seed(0)
    if not torch.cuda.is_available() or case.get("device") == "cpu":
        torch.set_num_threads(1)
    case = {**DEFAULTS, **case}
    with tempfile.TemporaryDirectory(prefix="slmtui-bench-") as tmp:
        figures = (run_engine if case["runner"].startswith("engine") else run_hf)(case, Path(tmp))
    real = case.get("lengths") == "real"  # real lengths count target tokens; fixed ones every token
    tokens = figures["targets"] if real else case["batch"] * case["seq"] * case["steps"]
    if real:
        n = case["batch"] * (case["warmup"] + case["steps"])
        lengths = sample_lengths(n, case["seq"], case.get("median", MEDIAN), case.get("p99", P99))
        figures["packing_ratio"] = padding_ratio(lengths, case["batch"])
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return {**case, **figures, "tokens_per_s": round(tokens / figures["seconds"], 1), "gpu": gpu,
            "torch": torch.__version__}


def throughput_cases(smoke: bool, model: str = "qwen2.5-0.5b") -> list[dict[str, Any]]:
    """engine and HF for each method, paired so a cut-short run still has comparable pairs."""
    extra = SMOKE if smoke else {"model": model}
    return [{"bench": "throughput", "runner": runner, "method": method, **extra}
            for method in METHODS for runner in ("engine", "hf")]


def report(rows: list[dict[str, Any]]) -> str:
    """Markdown: per method, engine vs HF tokens/s and peak reserved memory, and the goals."""
    by = {(r["runner"], r["method"], r.get("model")): r for r in rows if r.get("bench") == "throughput" and "error" not in r}
    lines = ["| model | method | engine tok/s | HF tok/s | speed ratio (goal ≥ 1.3) | engine peak GiB | "
             "HF peak GiB | memory ratio (goal ≤ 0.5) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (runner, method, model), eng in sorted(by.items()):
        if runner != "engine":
            continue
        hf = by.get(("hf", method, model))
        speed = f"{eng['tokens_per_s'] / hf['tokens_per_s']:.2f}" if hf else "n/a"
        mem = (f"{eng['peak_reserved_gib'] / hf['peak_reserved_gib']:.2f}"
               if hf and eng.get("peak_reserved_gib") and hf.get("peak_reserved_gib") else "n/a")
        lines.append(f"| {model} | {method} | {eng['tokens_per_s']:,.0f} | "
                     f"{format(hf['tokens_per_s'], ',.0f') if hf else 'n/a'} | {speed} | {eng.get('peak_reserved_gib')} | "
                     f"{hf.get('peak_reserved_gib') if hf else 'n/a'} | {mem} |")
    for r in rows:
        if r.get("bench") == "throughput" and "error" in r:
            lines.append(f"| {r.get('model')} | {r['method']} ({r['runner']}) | failed: {r['error']} | | | | | |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="run one case (JSON) in this process and print its figures as JSON")
    parser.add_argument("--report", type=Path, help="print the markdown table of a results JSONL file")
    parser.add_argument("--lengths", choices=("fixed", "real"), default="fixed",
                        help="real: run the four runners on real example lengths (bench/real_lengths.py)")
    parser.add_argument("--smoke", action="store_true", help="with --lengths real: the tiny model, a few steps")
    parser.add_argument("--median", type=float, default=MEDIAN, help="median example length (tokens)")
    parser.add_argument("--p99", type=float, default=P99, help="99th-percentile example length (tokens)")
    parser.add_argument("--seq", type=int, help="truncate examples at this many tokens (default 1024)")
    parser.add_argument("--out", type=Path, default=Path("bench-out"), help="with --lengths real: results folder")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))), flush=True)
    elif args.report:
        rows = [json.loads(line) for line in args.report.read_text().splitlines() if line.strip()]
        print(report(rows) + "\n\n" + real_lengths.report(rows))
    elif args.lengths == "real":
        from bench.gpu_suite import run_cases

        shape = {"median": args.median, "p99": args.p99, **({"seq": args.seq} if args.seq else {})}
        cases = [{**c, **shape, **({"device": "cpu"} if args.smoke else {})} for c in real_lengths.real_cases(args.smoke)]
        print(real_lengths.report(run_cases(cases, args.out, budget_s=3600, cap_s=600)))
    else:
        parser.error("give --case, --report or --lengths real (bench/gpu_suite.py runs every case)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
