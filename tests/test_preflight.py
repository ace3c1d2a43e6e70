"""Pre-launch checks (`slmtui.launch`): a busy GPU (fake inventory), the disk, structured refusals as the CLI and
the console word them, and resume refusals; all light, no engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.catalog import load_catalog
from engine.protocol import GIB
from engine.spec import RunSpec
from slmtui.gpu import GpuProcess, GpuSnapshot, Inventory
from slmtui.launch import Refusal, check_disk, check_gpu, check_launch, chosen_gpus, spec_disk_plan
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
    refusal = result.refusal
    assert refusal is not None and refusal.forceable and "20.0 GiB free" in refusal.reason
    assert "other processes hold 58.0 GiB" in refusal.reason and "wait for them" in refusal.remedy
    assert "--force" not in refusal.sentence() and "\n" not in refusal.sentence()
    assert refusal.sentence("pass --force to start anyway").endswith("wait for them, or pass --force to start anyway.")

    forced = check_gpu(gpu_spec(), QWEN.shape, inv, force=True, own_pid=1)
    assert forced.refusal is None and forced.overridden == (refusal,)
    assert forced.notes[-1].startswith("Estimated peak memory")

    small = check_gpu(gpu_spec(micro_batch=1), QWEN.shape, inv, own_pid=1)  # ~5 GiB fits beside alice
    assert small.refusal is None and "alice" in small.notes[0]


def test_an_idle_gpu_says_nothing_of_others_and_our_own_process_is_not_counted() -> None:
    assert QWEN is not None
    mine = (GpuProcess(pid=77, user="me", command="slmtui", gpu_memory=int(1 * GIB)),)
    result = check_gpu(gpu_spec(), QWEN.shape, Inventory(time=0.0, gpus=(busy_gpu(free_gib=79, others=mine),)),
                       own_pid=77)
    assert result.refusal is None and not any("in use" in n for n in result.notes)
    assert result.notes == (result.notes[-1],) and result.notes[-1].startswith("Estimated peak memory")


def test_which_gpus_a_spec_uses() -> None:
    inv = Inventory(time=0.0, gpus=(busy_gpu(0), busy_gpu(1), busy_gpu(2)))
    assert chosen_gpus(gpu_spec("cpu"), inv) == []
    assert chosen_gpus(gpu_spec("auto"), inv) == [0]
    assert chosen_gpus(gpu_spec("cuda:1", devices=2), inv) == [1, 2]
    assert chosen_gpus(gpu_spec("auto"), Inventory(time=0.0, error="no NVML")) == []
    missing = check_gpu(gpu_spec("cuda:5"), None, inv, own_pid=1, force=True)
    assert missing.refusal and "GPU 5" in missing.refusal.reason and not missing.refusal.forceable
    assert missing.refusal.sentence("launch anyway").endswith("has 3; fix it.")


def test_the_disk_check_refuses_with_the_numbers(tmp_path: Path) -> None:
    assert QWEN is not None
    spec = gpu_spec()
    spec.method.kind = "full"
    plan = spec_disk_plan(spec, QWEN.shape)
    assert plan.checkpoints == 4 and plan.checkpoint_bytes > 494_000_000 * 12  # fp32 weights + AdamW moments
    refused = check_disk(spec, QWEN.shape, tmp_path, free=2 * GIB).refusal
    assert refused and "only 2.00 GiB is free" in refused.reason and "4 checkpoint(s)" in refused.reason
    assert not refused.forceable and refused.sentence("pass --force to start anyway").endswith(
        "lower train.keep_checkpoints or raise train.save_every.")
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
    from engine.spec_setup import train_setup

    spec = gpu_spec()
    spec.train.loss, spec.train.precision, spec.method.target_modules = "auto", "auto", ["q_proj", "v_proj"]
    setup = train_setup(spec)  # packed (the default): the token budget, in rows of max_length
    assert (setup.loss, setup.precision, setup.targets, setup.batch, setup.seq) == ("fused", "bf16", "attention", 8,
                                                                                     1024)
    spec.train.micro_batch_tokens = 2048 + 512
    assert (train_setup(spec).batch, train_setup(spec).seq) == (2, 1024)
    spec.train.packing, spec.train.micro_batch_tokens = "off", 0
    assert (train_setup(spec).batch, train_setup(spec).seq) == (8, 1024)
    running = train_setup(spec, "fp32", "standard", 2, 300)  # what an engine knows once it runs
    assert (running.precision, running.loss, running.batch, running.seq) == ("fp32", "standard", 2, 300)
    spec.method.target_modules = []  # no module named: not "attention only", for the console and the engine alike
    assert train_setup(spec).targets == train_setup(spec, "bf16", "fused", 8, 1024).targets == "all-linear"


def test_the_checks_run_when_the_models_shape_is_unknown(tmp_path: Path) -> None:
    """A model the estimate cannot size skips the memory and disk numbers, not the GPU checks themselves."""
    spec = gpu_spec("cuda:3")
    spec.model.name = "nobody/not-cached-anywhere"
    inv = Inventory(time=0.0, gpus=(busy_gpu(),))
    check = check_launch(spec, tmp_path, lambda: inv)
    assert check.refusal is not None and "asks for GPU 3" in check.refusal.reason
    spec.train.device = "auto"
    check = check_launch(spec, tmp_path, lambda: inv)
    assert check.refusal is None and "alice" in check.notes[0]


def test_a_refusal_is_worded_by_each_front_end() -> None:
    refusal = Refusal("It needs 9 GiB but 8 are free", "lower train.micro_batch", forceable=True)
    assert refusal.sentence() == "It needs 9 GiB but 8 are free; lower train.micro_batch."
    assert refusal.sentence("launch anyway") == "It needs 9 GiB but 8 are free; lower train.micro_batch, or launch anyway."
    fixed = Refusal("No room", "free space")
    assert fixed.sentence("pass --force to start anyway") == "No room; free space."


def test_the_cli_words_a_refusal_with_force_and_runs_the_same_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    import slmtui.gpu
    import slmtui.launch
    from slmtui.cli._common import UserError
    from slmtui.cli.runs import launch_spec

    (tmp_path / "data.jsonl").write_text('{"text": "hello"}\n')
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text('name = "big"\n[model]\nname = "Qwen/Qwen2.5-0.5B"\n[data]\npath = "data.jsonl"\n'
                         '[train]\nloss = "standard"\n')
    monkeypatch.setattr(slmtui.gpu, "inventory", lambda: Inventory(time=0.0, gpus=(busy_gpu(),)))
    launched: list[str] = []
    monkeypatch.setattr(slmtui.launch, "launch", lambda spec, runs_dir, **kw: launched.append(spec.name))
    with pytest.raises(UserError) as refused:
        launch_spec(spec_path, tmp_path / "runs")
    assert str(refused.value).startswith("The estimate needs") and "20.0 GiB free" in str(refused.value)
    assert str(refused.value).endswith("wait for them, or pass --force to start anyway.") and not launched
    launch_spec(spec_path, tmp_path / "runs", force=True)
    out = capsys.readouterr().out
    assert launched == ["big"] and "Starting anyway (--force): The estimate needs" in out and "alice" in out
    # A model the estimate cannot size is checked as in the console: a GPU the machine lacks is refused.
    spec_path.write_text('name = "big"\n[model]\nname = "nobody/not-cached-anywhere"\n[data]\npath = "data.jsonl"\n'
                         '[train]\ndevice = "cuda:3"\n')
    with pytest.raises(UserError, match="asks for GPU 3 but this machine has 1; fix it"):
        launch_spec(spec_path, tmp_path / "runs", force=True)


def test_a_run_over_several_gpus_is_judged_per_gpu_as_the_engine_will_shard_it() -> None:
    entry = load_catalog().model("qwen2.5-7b")
    assert entry is not None
    spec = gpu_spec(micro_batch=1, devices=4)
    spec.model.name, spec.method.kind, spec.data.max_length, spec.train.packing = "qwen2.5-7b", "full", 512, "off"
    spec.train.gradient_checkpointing = True
    idle = tuple(busy_gpu(i, free_gib=79, others=()) for i in range(4))
    sharded = check_gpu(spec, entry.shape, Inventory(time=0.0, gpus=idle), own_pid=1)
    assert sharded.refusal is None, sharded.refusal  # whole on one GPU it needs over 79 GiB; a quarter fits
    spec.train.strategy = "ddp"  # each GPU holding the whole model: refused, with the same numbers as one GPU's
    whole = check_gpu(spec, entry.shape, Inventory(time=0.0, gpus=idle), own_pid=1)
    assert whole.refusal is not None and "GPU 0 has 79.0 GiB free" in whole.refusal.reason
