"""The optional speed-ups: Liger's kernels only where they can run (swapped into the model when they can), and
torch.compile of the decoder layers training the same loss."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from engine.modeling import load_for_training
from engine.train import speedups
from engine.train.loop import Trainer
from tests.test_train_loop import make_spec
from tests.train_helpers import Ex, build_examples, instruction_rows

LIGER = importlib.util.find_spec("liger_kernel") is not None


@pytest.fixture(scope="module")
def examples(tiny_model_dir: Path) -> list[Ex]:
    from engine.modeling import load_tokenizer

    return build_examples(load_tokenizer(make_spec(tiny_model_dir, "lora").model), instruction_rows(24))


def test_kernels_are_used_only_where_they_can_run(tiny_model_dir: Path) -> None:
    loaded = load_for_training(make_spec(tiny_model_dir, "lora"))
    said: list[str] = []
    norm_forward = loaded.model.get_base_model().model.norm.forward
    assert not speedups.use_kernels("auto", loaded.model, "cpu", said.append)  # Triton kernels: CUDA only
    assert not speedups.use_kernels("off", loaded.model, "cuda", said.append)
    assert said == [] and loaded.model.get_base_model().model.norm.forward == norm_forward
    assert speedups.why_no_kernels("llama", "cpu") == "they are Triton kernels for CUDA GPUs"
    if LIGER:
        assert speedups.why_no_kernels("llama", "cuda") == speedups.why_no_kernels("qwen2", "cuda") == ""
        assert speedups.why_no_kernels("gpt2", "cuda") == "liger-kernel has no kernels for gpt2 models"
    else:
        assert "liger-kernel is not installed" in speedups.why_no_kernels("llama", "cuda")


SWAP_IN_A_FRESH_PROCESS = """
import json, sys
from engine.modeling import load_for_training
from engine.train import speedups
from tests.test_train_loop import make_spec
loaded = load_for_training(make_spec(sys.argv[1], "lora"))
speedups.apply_liger(loaded.model)
base = loaded.model.get_base_model().model
import transformers.models.llama.modeling_llama as llama
print(json.dumps({"norm": repr(base.norm.forward), "mlp": repr(base.layers[0].mlp.forward),
                  "rope": llama.apply_rotary_pos_emb.__name__,
                  "gate": type(base.layers[0].mlp.gate_proj).__module__}))
"""


@pytest.mark.skipif(not LIGER, reason="liger-kernel is not installed (the gpu extra)")
def test_liger_kernels_are_swapped_into_a_lora_model(tiny_model_dir: Path) -> None:
    # in a process of its own: Liger also patches transformers' Llama classes and functions module-wide
    done = subprocess.run([sys.executable, "-c", SWAP_IN_A_FRESH_PROCESS, str(tiny_model_dir)], capture_output=True,
                          text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent, check=True)
    swapped = json.loads(done.stdout.strip().splitlines()[-1])
    assert "LigerRMSNorm" in swapped["norm"] and "LigerSwiGLUMLP" in swapped["mlp"]
    assert swapped["rope"] == "liger_rotary_pos_emb"
    assert swapped["gate"].startswith("peft")  # the MLP still runs through the LoRA-wrapped projections


def test_compiled_layers_train_the_same_loss(tiny_model_dir: Path, examples: list[Ex],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speedups, "COMPILE_BACKEND", "aot_eager")  # dynamo and autograd, without code generation
    curves = []
    for compiled in (False, True):
        torch.manual_seed(0)
        spec = make_spec(tiny_model_dir, "lora", micro_batch=4, lr=5e-3, schedule="constant", packing="off")
        trainer = Trainer(load_for_training(spec), spec, examples[:20], examples[20:], total_steps=3)
        said: list[str] = []
        if compiled:
            assert speedups.compile_layers(trainer.model, said.append) == 2
            assert all(layer._compiled_call_impl is not None for layer in speedups.decoder_layers(trainer.model))
            assert said and "Compiled 2 decoder layers" in said[0]
        curves.append([trainer.train_step().loss.item() for _ in range(3)])
    assert curves[1] == pytest.approx(curves[0], rel=1e-5)
