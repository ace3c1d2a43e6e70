"""`train.strategy = "auto"` on GPUs (faked: this machine has none): shard when the unsharded estimate does not fit
the free memory of rank 0's GPU with the console's margin, as New run and the launch check judge it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from engine.spec import RunSpec
from engine.train import rehearsal
from engine.train.distributed import Dist
from engine.train.sharding import choose_strategy

GIB = 2**30


def trainer(kind: str, strategy: str = "auto") -> SimpleNamespace:
    spec = RunSpec()
    spec.method.kind, spec.train.strategy = kind, strategy
    return SimpleNamespace(spec=spec, device=torch.device("cuda", 0), dist=Dist())


@pytest.mark.parametrize(("kind", "needed_gib", "free_gib", "chosen"), [
    ("full", 60.0, 79.0, "ddp"),    # fits one GPU with 10% to spare: each holds the whole model
    ("full", 60.0, 40.0, "fsdp"),   # another process holds memory: what is free decides
    ("lora", 75.0, 79.0, "fsdp"),   # a 16-bit base too big for one GPU: sharded with its adapters
    ("qlora", 75.0, 40.0, "ddp"),   # a 4-bit base is never sharded
])
def test_auto_shards_what_the_free_memory_of_one_gpu_does_not_hold(monkeypatch: pytest.MonkeyPatch, kind: str,
                                                                   needed_gib: float, free_gib: float,
                                                                   chosen: str) -> None:
    monkeypatch.setattr(rehearsal, "planned_estimate", lambda t: {"total_gib": needed_gib})
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(free_gib * GIB), int(80 * GIB)))
    said: list[str] = []
    assert choose_strategy(trainer(kind), 2, said.append) == chosen  # type: ignore[arg-type]
    assert len(said) == 1 and said[0].startswith(f"Data parallel over 2 processes with {chosen.upper()}")
    assert choose_strategy(trainer(kind, "ddp"), 2, said.append) == "ddp"  # type: ignore[arg-type]
    assert choose_strategy(trainer(kind), 1, said.append) == "single"  # type: ignore[arg-type]
