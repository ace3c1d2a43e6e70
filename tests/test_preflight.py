"""Pre-launch checks: a busy GPU (fake inventory), the disk, and resume refusals; all light, no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import load_catalog
from engine.protocol import GIB
from engine.spec import RunSpec
from slmtui.gpu import GpuProcess, GpuSnapshot, Inventory
from slmtui.preflight import check_disk, check_gpu, chosen_gpus, spec_disk_plan
from slmtui.runs import ResumeRefused, resume

QWEN = load_catalog().model("Qwen/Qwen2.5-0.5B")


def gpu_spec(device: str = "auto", micro_batch: int = 8, devices: int = 1) -> RunSpec:
    spec = RunSpec(name="busy")
    spec.model.name = "Qwen/Qwen2.5-0.5B"
    spec.train.device, spec.train.micro_batch, spec.train.devices = device, micro_batch, devices
    spec.train.loss = "standard"  # fp32 logits: ~29.5 GiB at 8 x 1024, so 20 GiB free is too little
    return spec


def busy_gpu(index: int = 0, free_gib: float = 20.0, others: tuple[GpuProcess, ...] | None = None) -> GpuSnapshot:
    procs = others if others is not None else (
        GpuProcess(pid=4242, user="alice", command="python train_big.py", gpu_memory=int(58 * GIB)),)
    return GpuSnapshot(index=index, name="NVIDIA H100 80GB HBM3", memory_total=int(80 * GIB),
                       memory_used=int((80 - free_gib) * GIB), memory_free=int(free_gib * GIB), processes=procs)


def test_a_busy_gpu_names_who_holds_memory_and_refuses_a_run_that_will_not_fit() -> None:
    assert QWEN is not None
    inv = Inventory(time=0.0, gpus=(busy_gpu(),))
    result = check_gpu(gpu_spec(), QWEN.shape, inv, own_pid=1)
    assert result.notes and "pid 4242 (alice: python train_big.py) holds 58.0 GiB" in result.notes[0]
    assert "20.0 of 80.0 GiB free" in result.notes[0]
    assert result.refusal is not None and "--force" in result.refusal and "20.0 GiB free" in result.refusal
    assert "other processes hold 58.0 GiB" in result.refusal and "\n" not in result.refusal

    forced = check_gpu(gpu_spec(), QWEN.shape, inv, force=True, own_pid=1)
    assert forced.refusal is None and any(n.startswith("Starting anyway (--force)") for n in forced.notes)

    small = check_gpu(gpu_spec(micro_batch=1), QWEN.shape, inv, own_pid=1)  # ~5 GiB fits beside alice
    assert small.refusal is None and "alice" in small.notes[0]


def test_an_idle_gpu_says_nothing_of_others_and_our_own_process_is_not_counted() -> None:
    assert QWEN is not None
    mine = (GpuProcess(pid=77, user="me", command="slmtui", gpu_memory=int(1 * GIB)),)
    result = check_gpu(gpu_spec(), QWEN.shape, Inventory(time=0.0, gpus=(busy_gpu(free_gib=79, others=mine),)),
                       own_pid=77)
    assert result.refusal is None and not any("in use" in n for n in result.notes)
    assert result.notes == [result.notes[-1]] and result.notes[-1].startswith("Estimated peak memory")


def test_which_gpus_a_spec_uses() -> None:
    inv = Inventory(time=0.0, gpus=(busy_gpu(0), busy_gpu(1), busy_gpu(2)))
    assert chosen_gpus(gpu_spec("cpu"), inv) == []
    assert chosen_gpus(gpu_spec("auto"), inv) == [0]
    assert chosen_gpus(gpu_spec("cuda:1", devices=2), inv) == [1, 2]
    assert chosen_gpus(gpu_spec("auto"), Inventory(time=0.0, error="no NVML")) == []
    missing = check_gpu(gpu_spec("cuda:5"), None, inv, own_pid=1)
    assert missing.refusal and "GPU 5" in missing.refusal


def test_the_disk_check_refuses_with_the_numbers(tmp_path: Path) -> None:
    assert QWEN is not None
    spec = gpu_spec()
    spec.method.kind = "full"
    plan = spec_disk_plan(spec, QWEN.shape)
    assert plan.checkpoints == 4 and plan.checkpoint_bytes > 494_000_000 * 12  # fp32 weights + AdamW moments
    refused = check_disk(spec, QWEN.shape, tmp_path, free=2 * GIB).refusal
    assert refused and "only 2.00 GiB is free" in refused and "4 checkpoint(s)" in refused
    assert check_disk(spec, QWEN.shape, tmp_path, free=500 * GIB).refusal is None


@pytest.mark.parametrize(("status", "checkpoint", "expected"), [
    ("completed", True, "nothing to resume"),
    ("stopped", False, "no checkpoint"),
])
def test_resume_refuses_what_it_cannot_continue(tmp_path: Path, status: str, checkpoint: bool,
                                                expected: str) -> None:
    run_dir = tmp_path / "20260101-000000-x"
    run_dir.mkdir()
    (run_dir / "spec.toml").write_text('name = "x"\n')
    (run_dir / "summary.json").write_text(json.dumps({"status": status}))
    if checkpoint:
        (run_dir / "checkpoints" / "step-000002").mkdir(parents=True)
        (run_dir / "checkpoints" / "step-000002" / "meta.json").write_text('{"step": 2}')
    with pytest.raises(ResumeRefused, match=expected):
        resume(run_dir)


def test_the_estimate_sees_the_spec_as_a_gpu_run() -> None:
    from slmtui.preflight import train_setup

    spec = gpu_spec()
    spec.train.loss, spec.train.precision, spec.method.target_modules = "auto", "auto", ["q_proj", "v_proj"]
    setup = train_setup(spec)
    assert (setup.loss, setup.precision, setup.targets, setup.batch, setup.seq) == ("fused", "bf16", "attention", 8,
                                                                                     1024)
