"""A fake `pynvml` with the real module's names and error classes, for the GPU inventory and the GPUs screen."""

from __future__ import annotations

import os
from collections import Counter
from types import ModuleType, SimpleNamespace
from typing import Any

import pynvml as real

from engine.protocol import GIB

# Each per-device call and the snapshot fields it feeds.
DEVICE_CALLS: dict[str, set[str]] = {
    "nvmlDeviceGetName": {"name"},
    "nvmlDeviceGetUUID": {"uuid"},
    "nvmlDeviceGetMemoryInfo": {"memory_total", "memory_used", "memory_free"},
    "nvmlDeviceGetUtilizationRates": {"gpu_util", "memory_util"},
    "nvmlDeviceGetTemperature": {"temperature"},
    "nvmlDeviceGetPowerUsage": {"power_draw"},
    "nvmlDeviceGetEnforcedPowerLimit": {"power_limit"},
    "nvmlDeviceGetClockInfo": {"sm_clock", "memory_clock"},
    "nvmlDeviceGetCurrPcieLinkGeneration": {"pcie_gen"},
    "nvmlDeviceGetCurrPcieLinkWidth": {"pcie_width"},
    "nvmlDeviceGetTotalEccErrors": {"ecc_corrected", "ecc_uncorrected"},
    "nvmlDeviceGetMigMode": {"mig_mode"},
    "nvmlDeviceGetComputeRunningProcesses": {"processes"},
}


class FakeNvml:
    """Builds a module with the real pynvml's constants, error classes and function names."""

    def __init__(self, count: int = 2) -> None:
        self.count = count
        self.calls: Counter[str] = Counter()
        self.raises: dict[str, BaseException] = {}
        self.module: Any = ModuleType("pynvml")  # its attributes are set below, by name
        for name in dir(real):
            if name.startswith(("NVML_", "NVMLError")):
                setattr(self.module, name, getattr(real, name))
        answers: dict[str, Any] = {
            "nvmlInit": lambda: None,
            "nvmlShutdown": lambda: None,
            "nvmlDeviceGetCount": lambda: self.count,
            "nvmlDeviceGetHandleByIndex": lambda i: f"handle{i}",
            "nvmlSystemGetDriverVersion": lambda: "550.54.15",
            "nvmlSystemGetCudaDriverVersion": lambda: 12040,
            "nvmlDeviceGetName": lambda h: b"NVIDIA H100 80GB HBM3",
            "nvmlDeviceGetUUID": lambda h: f"GPU-{h}",
            "nvmlDeviceGetMemoryInfo": lambda h: SimpleNamespace(total=80 * GIB, used=2 * GIB, free=78 * GIB),
            "nvmlDeviceGetUtilizationRates": lambda h: SimpleNamespace(gpu=37, memory=12),
            "nvmlDeviceGetTemperature": lambda h, sensor: 41,
            "nvmlDeviceGetPowerUsage": lambda h: 123456,
            "nvmlDeviceGetEnforcedPowerLimit": lambda h: 700000,
            "nvmlDeviceGetClockInfo": lambda h, kind: 1980 if kind == real.NVML_CLOCK_SM else 2619,
            "nvmlDeviceGetCurrPcieLinkGeneration": lambda h: 5,
            "nvmlDeviceGetCurrPcieLinkWidth": lambda h: 16,
            "nvmlDeviceGetTotalEccErrors": lambda h, kind, counter: 0 if kind == 0 else 3,
            "nvmlDeviceGetMigMode": lambda h: [real.NVML_DEVICE_MIG_DISABLE, real.NVML_DEVICE_MIG_DISABLE],
            "nvmlDeviceGetComputeRunningProcesses": lambda h: [
                SimpleNamespace(pid=os.getpid(), usedGpuMemory=3 * GIB),
                SimpleNamespace(pid=2**22 + 7, usedGpuMemory=None),
            ],
        }
        for name, fn in answers.items():
            setattr(self.module, name, self._wrap(name, fn))

    def _wrap(self, name: str, fn: Any) -> Any:
        def call(*args: Any) -> Any:
            self.calls[name] += 1
            if name in self.raises:
                raise self.raises[name]
            return fn(*args)

        return call
