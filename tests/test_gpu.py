"""The GPU inventory against a fake `pynvml` built from the real module's names and error classes."""

from __future__ import annotations

import os
import shutil
import sys
import threading
from dataclasses import fields

import pynvml as real
import pytest

from slmtui.gpu import NA, GpuSampler, GpuSnapshot, Inventory, Nvml, inventory
from tests.gpu_fakes import DEVICE_CALLS, GIB, FakeNvml


def test_fake_uses_only_real_names() -> None:
    fake = FakeNvml()
    for name in vars(fake.module):
        if not name.startswith("__"):
            assert hasattr(real, name), name
    assert issubclass(real.NVMLError_NotSupported, real.NVMLError)


def test_full_snapshot() -> None:
    inv = inventory(FakeNvml().module)
    assert inv.error is None and len(inv.gpus) == 2
    assert inv.driver_version == "550.54.15" and inv.cuda_version == "12.4"
    gpu = inv.gpus[1]
    assert gpu.index == 1 and gpu.name == "NVIDIA H100 80GB HBM3" and gpu.uuid == "GPU-handle1"
    assert (gpu.memory_total, gpu.memory_free) == (80 * GIB, 78 * GIB)
    assert (gpu.gpu_util, gpu.memory_util, gpu.temperature) == (37, 12, 41)
    assert gpu.power_draw == pytest.approx(123.456) and gpu.power_limit == 700.0
    assert (gpu.sm_clock, gpu.memory_clock, gpu.pcie_gen, gpu.pcie_width) == (1980, 2619, 5, 16)
    assert (gpu.ecc_corrected, gpu.ecc_uncorrected, gpu.mig_mode) == (0, 3, "disabled")
    assert isinstance(gpu.processes, tuple)
    me, gone = gpu.processes
    assert me.pid == os.getpid() and me.gpu_memory == 3 * GIB and "python" in str(me.command).lower()
    assert gone.gpu_memory is NA and gone.user is NA and gone.command is NA
    data = inv.to_dict()
    assert data["error"] is None and data["gpus"][1]["processes"][1]["gpu_memory"] is None


@pytest.mark.parametrize("call", sorted(DEVICE_CALLS))
@pytest.mark.parametrize("error", ["NVMLError_NotSupported", "NVMLError_Unknown", "RuntimeError", "missing"])
def test_each_call_failing_gives_na_for_its_fields_only(call: str, error: str) -> None:
    fake = FakeNvml(count=1)
    if error == "missing":  # an older pynvml without this function
        delattr(fake.module, call)
    else:
        fake.raises[call] = RuntimeError("boom") if error == "RuntimeError" else getattr(real, error)()
    nvml = Nvml(fake.module)
    first, second = nvml.snapshot(), nvml.snapshot()
    assert first.error is None
    gpu = first.gpus[0]
    healthy = inventory(FakeNvml(count=1).module).gpus[0]
    for f in fields(GpuSnapshot):
        value = getattr(gpu, f.name)
        if f.name in DEVICE_CALLS[call]:
            assert value is NA, f.name
        elif f.name != "processes":
            assert value == getattr(healthy, f.name), f.name
    assert second.gpus[0] == gpu
    asks = fake.calls[call]
    per_snapshot = 2 if call in ("nvmlDeviceGetClockInfo", "nvmlDeviceGetTotalEccErrors") else 1
    if error == "NVMLError_NotSupported":
        assert asks == per_snapshot  # asked once, then remembered as n/a
    elif error != "missing":
        assert asks == 2 * per_snapshot  # a transient failure is asked again


@pytest.mark.parametrize(("error", "words"), [
    ("NVMLError_LibraryNotFound", "no NVIDIA GPU or driver"),
    ("NVMLError_DriverNotLoaded", "driver is not loaded"),
    ("NVMLError_LibRmVersionMismatch", "differ in version"),
    ("NVMLError_Unknown", "could not start"),
])
def test_init_failure_is_one_state_with_reason(error: str, words: str) -> None:
    fake = FakeNvml()
    fake.raises["nvmlInit"] = getattr(real, error)()
    inv = inventory(fake.module)
    assert inv.gpus == () and words in (inv.error or "")
    assert inv.to_dict()["gpus"] == [] and fake.calls["nvmlShutdown"] == 0


def test_no_gpu_and_count_failure() -> None:
    assert "No NVIDIA GPU" in (inventory(FakeNvml(count=0).module).error or "")
    fake = FakeNvml()
    fake.raises["nvmlDeviceGetCount"] = real.NVMLError_Unknown()
    assert inventory(fake.module).error


def test_lost_handle_gives_an_all_na_gpu() -> None:
    fake = FakeNvml(count=2)
    fake.raises["nvmlDeviceGetHandleByIndex"] = real.NVMLError_GpuIsLost()
    inv = inventory(fake.module)
    assert [g.index for g in inv.gpus] == [0, 1] and inv.gpus[0].name is NA


def test_missing_pynvml_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # makes `import pynvml` fail
    assert "nvidia-ml-py" in (inventory().error or "")


def test_sampler_keeps_bounded_history_from_a_thread() -> None:
    ticks = iter(range(10_000))
    sampler = GpuSampler(Nvml(FakeNvml(count=1).module, clock=lambda: float(next(ticks))),
                         interval=0.0, capacity=5)
    got: list[Inventory] = []
    done = threading.Event()

    def on_sample(inv: Inventory) -> None:
        got.append(inv)
        if len(got) >= 12:
            done.set()

    sampler.start(on_sample)
    assert done.wait(5)
    sampler.stop()
    history = sampler.history()
    assert len(history) == 5 and [h.time for h in history] == sorted(h.time for h in history)
    assert sampler.latest is history[-1] and len(got) >= 12


def test_sampler_stops_when_there_is_no_gpu() -> None:
    sampler = GpuSampler(Nvml(FakeNvml(count=0).module), interval=0.0)
    sampler.run()  # returns at once instead of polling a machine with no GPU
    assert len(sampler.history()) == 1


@pytest.mark.gpu
@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="needs an NVIDIA GPU")
def test_real_gpu() -> None:
    inv = inventory()
    assert inv.error is None and inv.gpus
    gpu = inv.gpus[0]
    assert isinstance(gpu.memory_total, int) and gpu.memory_total > GIB
    assert isinstance(gpu.name, str) and gpu.name
