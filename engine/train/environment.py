"""The environment fingerprint of a run (versions, GPU, driver) and the memory figures of each step."""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

import torch

from engine.protocol import GIB


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML, no driver, no GPU: the fingerprint says null
        return None


def environment_fingerprint(device: torch.device) -> dict[str, Any]:
    """Versions of the stack and what hardware the run trains on (bitsandbytes by metadata: importing it is slow)."""
    cuda = device.type == "cuda"
    gpu = torch.cuda.get_device_name(device) if cuda else None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpu": gpu,
        "gpu_memory_gib": round(torch.cuda.get_device_properties(device).total_memory / GIB, 2) if cuda else None,
        "driver": _driver_version() if cuda else None,
        "transformers": _version("transformers"),
        "peft": _version("peft"),
        "bitsandbytes": _version("bitsandbytes"),
        "datasets": _version("datasets"),
        "accelerate": _version("accelerate"),
        "cpu_threads": torch.get_num_threads(),
    }


def process_memory() -> dict[str, float | None]:
    """The engine process's resident memory now and at its peak, in GiB (what a CPU run is limited by)."""
    import resource

    import psutil

    try:
        rss = psutil.Process().memory_info().rss
    except psutil.Error:
        rss = None
    # KiB on Linux; the kernel updates this high-water mark lazily, so it can trail the resident size just read
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, rss or 0)
    return {"rss_gib": round(rss / GIB, 3) if rss is not None else None, "rss_peak_gib": round(peak / GIB, 3)}


def memory_stats(device: torch.device) -> dict[str, float | None]:
    """Allocated, reserved and peak GPU memory in GiB (None on the CPU: torch does not track it there), and the
    engine process's resident memory."""
    host = process_memory()
    if device.type != "cuda":
        return {"mem_allocated_gib": None, "mem_reserved_gib": None, "mem_peak_gib": None, **host}
    return {
        "mem_allocated_gib": round(torch.cuda.memory_allocated(device) / GIB, 3),
        "mem_reserved_gib": round(torch.cuda.memory_reserved(device) / GIB, 3),
        "mem_peak_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 3),
        **host,
    }
