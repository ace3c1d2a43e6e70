"""`python -m engine doctor`: what this machine can train with, and what is wrong with it, each with a fix.

Facts first (`collect_facts`: versions, CUDA, bf16, a 4-bit layer smoke test, disk space, NVIDIA GPUs seen by the
driver), then rules over them (`diagnose`, pure, so each rule is tested with made-up facts). Prints one JSON
object and exits 0 whenever it ran, whatever it found.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import shutil
from importlib import metadata
from typing import Any

from engine.diskplan import nearest_existing
from engine.paths import runs_dir, slmtui_home
from engine.protocol import GIB

#: Distributions whose declared requirements on each other are checked.
STACK = ("torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets", "safetensors", "tokenizers",
         "huggingface-hub", "numpy")
#: Below this much free disk a run's checkpoints and the model cache soon fill it.
LOW_DISK_GIB = 20.0
#: NF4 quantisation of a Gaussian weight errs about 10%; past this the kernels are broken.
SMOKE_MAX_REL_ERROR = 0.25
#: The oldest peft that transformers' own PEFT integration accepts (its `MIN_PEFT_VERSION`, read from each
#: release): (from this transformers version on, peft at least this), ascending. Doctor asks the installed
#: transformers first and falls back on this table; the ranges in pyproject.toml must never admit a pair the
#: table rejects (tests/test_version_ranges.py), so a fresh set-up installs what doctor accepts.
PEFT_MINIMUM_FOR_TRANSFORMERS: tuple[tuple[str, str], ...] = (
    ("5.0.0", "0.18.0"),
    ("5.10.1", "0.18.2"),
    ("5.15.0", "0.19.1"),
    ("5.18.0", "0.20.0"),
    ("5.24.0", "0.22.0"),
)


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_conflicts() -> list[dict[str, str]]:
    """Declared requirements among the stack that the installed versions break (from package metadata)."""
    from packaging.requirements import InvalidRequirement, Requirement

    installed = {_norm(d): v for d in STACK if (v := _version(d))}
    conflicts = []
    for dist in STACK:
        if _norm(dist) not in installed:
            continue
        for text in metadata.requires(dist) or []:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue  # an optional extra's requirement
            have = installed.get(_norm(req.name))
            if have and req.specifier and not req.specifier.contains(have, prereleases=True):
                conflicts.append({"package": dist, "version": installed[_norm(dist)], "requires": str(req),
                                  "installed": have})
    return conflicts


def transformers_peft_minimum() -> str | None:
    """The peft version transformers' own PEFT integration demands (None when it states none)."""
    try:
        from transformers.integrations import peft as integration
    except Exception:  # an old or broken transformers: the requirement check reports it
        return None
    value = getattr(integration, "MIN_PEFT_VERSION", None)
    return str(value) if value else None


def known_peft_minimum(transformers: str | None) -> str | None:
    """The oldest peft `PEFT_MINIMUM_FOR_TRANSFORMERS` says this transformers version wants (None: no demand
    known, or no transformers)."""
    from packaging.version import InvalidVersion, Version

    try:
        version = Version(transformers) if transformers else None
    except InvalidVersion:
        return None
    minimum = None
    for since, peft in PEFT_MINIMUM_FOR_TRANSFORMERS:
        if version is not None and version >= Version(since):
            minimum = peft
    return minimum


def nvidia_gpus() -> int | None:
    """NVIDIA GPUs the driver sees (NVML), whatever torch thinks; None when NVML is missing."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no library or no driver: nothing can be said
        return None


def smoke_4bit(device: str) -> dict[str, Any]:
    """Quantise a random 64×32 weight to NF4 with bitsandbytes and run one forward; compare with fp32."""
    import torch

    result: dict[str, Any] = {"device": device, "ok": False, "rel_error": None, "backend": None, "error": None}
    try:
        import bitsandbytes as bnb

        result["backend"] = getattr(getattr(bnb, "cextension", None), "BNB_BACKEND", None)
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(32, 64, generator=gen)
        x = torch.randn(4, 64, generator=gen)
        layer = bnb.nn.Linear4bit(64, 32, bias=False, compute_dtype=torch.float32, quant_type="nf4")
        layer.weight = bnb.nn.Params4bit(weight.clone(), requires_grad=False, quant_type="nf4")
        layer = layer.to(device)
        if not getattr(layer.weight, "bnb_quantized", False):  # on the CPU `.to` leaves it unquantised
            layer.weight = layer.weight._quantize(device)  # type: ignore[attr-defined]
        with torch.no_grad():
            y = layer(x.to(device)).float().cpu()
        rel = float((y - x @ weight.t()).norm() / (x @ weight.t()).norm())
        result["rel_error"] = round(rel, 4)
        result["ok"] = rel < SMOKE_MAX_REL_ERROR
        if not result["ok"]:
            result["error"] = f"the 4-bit layer's output is off by {rel:.0%}"
    except Exception as exc:  # whatever breaks here is what the user needs to know
        result["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:200] if str(exc) else ''}"
    return result


def disk_space() -> list[dict[str, Any]]:
    """Free and total space of HOME and the runs folder."""
    out = []
    for label, path in (("home", slmtui_home(create=False)), ("runs", runs_dir(create=False))):
        usage = shutil.disk_usage(nearest_existing(path))  # doctor looks, it creates nothing
        out.append({"what": label, "path": str(path), "free_gib": round(usage.free / GIB, 1),
                    "total_gib": round(usage.total / GIB, 1)})
    return out


def collect_facts() -> dict[str, Any]:
    """Everything `diagnose` reasons over (imports torch; runs one tiny 4-bit forward)."""
    import torch

    from engine.train.environment import environment_fingerprint

    cuda = torch.cuda.is_available()
    device = torch.device("cuda:0" if cuda else "cpu")
    devices = []
    for i in range(torch.cuda.device_count() if cuda else 0):
        props = torch.cuda.get_device_properties(i)
        devices.append({"index": i, "name": props.name, "memory_gib": round(props.total_memory / GIB, 1),
                        "capability": f"{props.major}.{props.minor}"})
    return {
        "env": environment_fingerprint(device),
        "cuda": {"available": cuda, "torch_cuda": torch.version.cuda, "devices": devices,
                 "bf16": bool(cuda and torch.cuda.is_bf16_supported()), "nvidia_gpus": nvidia_gpus()},
        "smoke_4bit": smoke_4bit(str(device)),
        "disk": disk_space(),
        "conflicts": requirement_conflicts(),
        "transformers_min_peft": transformers_peft_minimum(),
        "python": platform.python_version(),
    }


def _older(version: str | None, minimum: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return version is not None and Version(version) < Version(minimum)
    except InvalidVersion:
        return False


def diagnose(facts: dict[str, Any]) -> list[dict[str, str]]:
    """Problems found in `facts`: severity (error, warning, info), what is wrong, and what to do."""
    problems: list[dict[str, str]] = []

    def add(severity: str, problem: str, fix: str) -> None:
        problems.append({"severity": severity, "problem": problem, "fix": fix})

    env, cuda = facts["env"], facts["cuda"]
    gpus = cuda.get("nvidia_gpus") or 0
    if tuple(int(p) for p in facts["python"].split(".")[:2]) < (3, 10):
        add("error", f"Python {facts['python']} is older than 3.10.", "Use Python 3.10 or newer.")
    if gpus and not cuda["torch_cuda"]:
        add("error", f"torch {env['torch']} is a CPU build, but the driver sees {gpus} NVIDIA GPU(s).",
            "Install a CUDA build of torch (pip install torch --index-url https://download.pytorch.org/whl/cu126, "
            "matching your driver).")
    elif gpus and not cuda["available"]:
        add("error", f"torch {env['torch']} was built for CUDA {cuda['torch_cuda']} but cannot use the "
            f"{gpus} GPU(s) the driver sees.", "Update the NVIDIA driver to one that supports that CUDA "
            "version, or install the torch build that matches the driver; check CUDA_VISIBLE_DEVICES.")
    if cuda["available"] and not cuda["bf16"]:
        add("info", "This GPU has no bf16, so runs use fp16 with loss scaling.",
            "Nothing to do; precision = 'auto' handles it.")
    if not cuda["available"] and not gpus:
        add("info", "No NVIDIA GPU is visible: training runs on the CPU (tiny models only).",
            "Use a machine with an NVIDIA GPU for real models.")
    smoke = facts["smoke_4bit"]
    if env.get("bitsandbytes") is None:
        add("warning", "bitsandbytes is not installed, so qlora and qdora cannot run.",
            "pip install bitsandbytes")
    elif not smoke["ok"]:
        add("error", f"The 4-bit layer smoke test failed on {smoke['device']} ({smoke['error']}).",
            "Reinstall bitsandbytes (pip install -U --force-reinstall bitsandbytes); use lora or full meanwhile.")
    if cuda["available"] and smoke.get("backend") not in (None, "CUDA", "cuda", "ROCm", "HIP"):
        add("error", f"bitsandbytes loaded its {smoke['backend']} library on a CUDA machine, so 4-bit layers "
            "would not use the GPU.", "Install a bitsandbytes wheel with CUDA libraries "
            "(pip install -U bitsandbytes) that matches torch's CUDA version.")
    minimum = facts.get("transformers_min_peft") or known_peft_minimum(env.get("transformers"))
    if minimum and _older(env.get("peft"), minimum):
        add("warning", f"transformers {env['transformers']} wants peft >= {minimum} for its own PEFT "
            f"integration (load_adapter, adapters in from_pretrained); peft {env['peft']} is installed.",
            f"pip install -U 'peft>={minimum}' (slmtui's training and export call peft directly and work).")
    for c in facts["conflicts"]:
        add("warning", f"{c['package']} {c['version']} requires {c['requires']}, but {c['installed']} is "
            "installed.", f"pip install '{c['requires']}' (or a {c['package']} release that accepts "
            f"{c['installed']}).")
    for disk in facts["disk"]:
        if disk["free_gib"] < LOW_DISK_GIB:
            add("warning", f"Only {disk['free_gib']} GiB is free on the {disk['what']} disk ({disk['path']}).",
                "Free space, or point SLMTUI_RUNS at a larger local disk; checkpoints and models need tens of GiB.")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine doctor", description=__doc__)
    parser.parse_args(argv)
    facts = collect_facts()
    problems = diagnose(facts)
    report = {**facts, "problems": problems, "ok": not any(p["severity"] == "error" for p in problems)}
    print(json.dumps(report, default=str))
    return 0

