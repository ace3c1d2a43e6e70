"""The GPU inventory: the console's only NVML user, after nvitop's `libnvml`.

Nothing here raises. Every NVML call returns a value or `NA`; a call the driver does not support (or that the
installed `pynvml` lacks) is asked once and then remembered as n/a. With no NVML library, no driver or no GPU,
`Nvml.snapshot()` returns an `Inventory` with no GPUs and one sentence in `error`, and the rest of the console
carries on. `GpuSampler` polls at 1 Hz into a bounded history from any thread and knows nothing of Textual.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any, Final, TypeVar

T = TypeVar("T")


class NotApplicable:
    """The value of a reading the GPU, driver or library cannot give (one shared instance: `NA`)."""

    _instance: NotApplicable | None = None

    def __new__(cls) -> NotApplicable:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "n/a"


NA: Final = NotApplicable()
MIB: Final = 1024**2

# Errors that mean "this call will never work on this device"; anything else may be transient.
_PERMANENT = ("NVMLError_NotSupported", "NVMLError_FunctionNotFound", "NVMLError_NoPermission")


@dataclass(frozen=True)
class GpuProcess:
    """A compute process on a GPU."""

    pid: int
    user: str | NotApplicable
    command: str | NotApplicable
    gpu_memory: int | NotApplicable  # bytes


@dataclass(frozen=True)
class GpuSnapshot:
    """One GPU's readings at one moment; memory in bytes, power in watts, clocks in MHz."""

    index: int
    name: str | NotApplicable = NA
    uuid: str | NotApplicable = NA
    memory_total: int | NotApplicable = NA
    memory_used: int | NotApplicable = NA
    memory_free: int | NotApplicable = NA
    gpu_util: int | NotApplicable = NA  # percent
    memory_util: int | NotApplicable = NA  # percent
    temperature: int | NotApplicable = NA  # degrees C
    power_draw: float | NotApplicable = NA
    power_limit: float | NotApplicable = NA
    sm_clock: int | NotApplicable = NA
    memory_clock: int | NotApplicable = NA
    pcie_gen: int | NotApplicable = NA
    pcie_width: int | NotApplicable = NA
    ecc_corrected: int | NotApplicable = NA  # volatile (since the driver loaded)
    ecc_uncorrected: int | NotApplicable = NA
    mig_mode: str | NotApplicable = NA  # "enabled" / "disabled"
    processes: tuple[GpuProcess, ...] | NotApplicable = NA

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: n/a becomes null."""
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class Inventory:
    """Every GPU at one moment, or no GPUs and the reason (`error`)."""

    time: float
    gpus: tuple[GpuSnapshot, ...] = ()
    error: str | None = None
    driver_version: str | NotApplicable = NA
    cuda_version: str | NotApplicable = NA

    def to_dict(self) -> dict[str, Any]:
        """The `slmtui gpus --json` envelope: `{"gpus": [...], "error": ...}` plus versions and time."""
        return {
            "gpus": [g.to_dict() for g in self.gpus],
            "error": self.error,
            "driver_version": _jsonable(self.driver_version),
            "cuda_version": _jsonable(self.cuda_version),
            "time": self.time,
        }


def _jsonable(value: Any) -> Any:
    if value is NA:
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


class Nvml:
    """A never-raising NVML session. Pass `module` (a fake `pynvml`) in tests; the real one is imported lazily."""

    def __init__(self, module: ModuleType | None = None, clock: Callable[[], float] = time.time) -> None:
        self._module = module
        self._clock = clock
        self._lock = threading.Lock()
        self._started = False
        self._error: str | None = None
        self._unsupported: set[tuple[Any, ...]] = set()
        self._handles: list[Any] = []
        self._driver_version: str | NotApplicable = NA
        self._cuda_version: str | NotApplicable = NA

    # -------------------------------------------------------------- set-up

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self._module is None:
            try:
                import pynvml  # here, not at the top: listing GPUs is the only reason the console loads NVML

                self._module = pynvml
            except Exception:
                self._error = "The nvidia-ml-py package is not installed, so GPUs cannot be listed (pip install nvidia-ml-py)."
                return
        nv = self._module
        try:
            nv.nvmlInit()
        except Exception as exc:
            self._error = _init_failure(exc)
            return
        count = self._call(("count",), lambda: int(nv.nvmlDeviceGetCount()))
        if not isinstance(count, int):
            self._error = "NVML started but could not count the GPUs."
            return
        if count == 0:
            self._error = "No NVIDIA GPU found: the driver is loaded but reports no devices."
            return
        self._handles = [self._handle(i) for i in range(count)]
        self._driver_version = self._call(("driver",), lambda: _text(nv.nvmlSystemGetDriverVersion()))
        self._cuda_version = self._call(("cuda",), lambda: _cuda_text(nv.nvmlSystemGetCudaDriverVersion()))

    def _handle(self, index: int) -> Any:
        nv = self._module
        assert nv is not None
        return self._call(("handle", index), lambda: nv.nvmlDeviceGetHandleByIndex(index))

    def _call(self, key: tuple[Any, ...], fn: Callable[[], T]) -> T | NotApplicable:
        """Run one NVML call; n/a on any failure, remembered when the failure is permanent."""
        if key in self._unsupported:
            return NA
        try:
            return fn()
        except AttributeError:  # this pynvml lacks the function
            self._unsupported.add(key)
        except Exception as exc:
            if type(exc).__name__ in _PERMANENT:
                self._unsupported.add(key)
        return NA

    def close(self) -> None:
        """Shut NVML down (safe to call twice, or without a start)."""
        with self._lock:
            if self._started and self._error is None and self._module is not None:
                with contextlib.suppress(Exception):
                    self._module.nvmlShutdown()
            self._started = False
            self._error = None
            self._handles = []

    # -------------------------------------------------------------- readings

    def snapshot(self) -> Inventory:
        """Every GPU now; never raises."""
        with self._lock:
            self._start()
            now = self._clock()
            if self._error is not None:
                return Inventory(time=now, error=self._error)
            gpus = tuple(self._device(i, h) for i, h in enumerate(self._handles))
            return Inventory(time=now, gpus=gpus, driver_version=self._driver_version,
                             cuda_version=self._cuda_version)

    def _device(self, index: int, handle: Any) -> GpuSnapshot:
        if handle is NA:
            return GpuSnapshot(index=index)
        nv = self._module
        assert nv is not None

        def ask(name: str, *args: Any) -> Any:
            return self._call((name, index, *args), lambda: getattr(nv, name)(handle, *args))

        mem = ask("nvmlDeviceGetMemoryInfo")
        util = ask("nvmlDeviceGetUtilizationRates")
        mig = ask("nvmlDeviceGetMigMode")
        return GpuSnapshot(
            index=index,
            name=_map(ask("nvmlDeviceGetName"), _text),
            uuid=_map(ask("nvmlDeviceGetUUID"), _text),
            memory_total=_map(mem, lambda m: int(m.total)),
            memory_used=_map(mem, lambda m: int(m.used)),
            memory_free=_map(mem, lambda m: int(m.free)),
            gpu_util=_map(util, lambda u: int(u.gpu)),
            memory_util=_map(util, lambda u: int(u.memory)),
            temperature=_map(ask("nvmlDeviceGetTemperature", nv.NVML_TEMPERATURE_GPU), int),
            power_draw=_map(ask("nvmlDeviceGetPowerUsage"), lambda mw: mw / 1000.0),
            power_limit=_map(ask("nvmlDeviceGetEnforcedPowerLimit"), lambda mw: mw / 1000.0),
            sm_clock=_map(ask("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_SM), int),
            memory_clock=_map(ask("nvmlDeviceGetClockInfo", nv.NVML_CLOCK_MEM), int),
            pcie_gen=_map(ask("nvmlDeviceGetCurrPcieLinkGeneration"), int),
            pcie_width=_map(ask("nvmlDeviceGetCurrPcieLinkWidth"), int),
            ecc_corrected=_map(ask("nvmlDeviceGetTotalEccErrors", nv.NVML_MEMORY_ERROR_TYPE_CORRECTED,
                                   nv.NVML_VOLATILE_ECC), int),
            ecc_uncorrected=_map(ask("nvmlDeviceGetTotalEccErrors", nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
                                     nv.NVML_VOLATILE_ECC), int),
            mig_mode=_map(mig, lambda m: "enabled" if int(m[0]) == nv.NVML_DEVICE_MIG_ENABLE else "disabled"),
            processes=_map(ask("nvmlDeviceGetComputeRunningProcesses"), _processes),
        )


def _map(value: Any, convert: Callable[[Any], T]) -> T | NotApplicable:
    """Convert a reading; a malformed one is n/a too, never an exception."""
    if value is NA:
        return NA
    try:
        return convert(value)
    except Exception:
        return NA


def _cuda_text(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def _processes(raw: Any) -> tuple[GpuProcess, ...]:
    return tuple(_process(p) for p in raw)


def _process(raw: Any) -> GpuProcess:
    pid = int(raw.pid)
    used = getattr(raw, "usedGpuMemory", None)
    user: str | NotApplicable = NA
    command: str | NotApplicable = NA
    try:
        import psutil

        proc = psutil.Process(pid)
        with proc.oneshot():
            user = _safe(proc.username)
            cmd = _safe(proc.cmdline)
            command = " ".join(cmd) if isinstance(cmd, list) and cmd else _safe(proc.name)
    except Exception:  # gone, in another container, or psutil missing
        pass
    return GpuProcess(pid=pid, user=user, command=command, gpu_memory=int(used) if used is not None else NA)


def _safe(fn: Callable[[], T]) -> T | NotApplicable:
    try:
        return fn()
    except Exception:
        return NA


def _init_failure(exc: Exception) -> str:
    """One sentence for why NVML could not start."""
    name = type(exc).__name__
    reasons = {
        "NVMLError_LibraryNotFound": "No NVIDIA driver library (libnvidia-ml) was found: this machine has no "
        "NVIDIA GPU or driver, so training runs on the CPU.",
        "NVMLError_DriverNotLoaded": "The NVIDIA driver is not loaded: load it (or reboot) to use the GPU.",
        "NVMLError_LibRmVersionMismatch": "The NVIDIA driver and its library differ in version: reboot or reload "
        "the driver.",
        "NVMLError_NoPermission": "No permission to query the NVIDIA driver: check the device permissions.",
        "NVMLError_GpuNotFound": "No NVIDIA GPU found.",
    }
    return reasons.get(name, f"NVML could not start ({exc}).")


@dataclass
class GpuSampler:
    """Samples an `Nvml` at `interval` seconds into a bounded history; safe to drive from a worker thread."""

    nvml: Nvml = field(default_factory=Nvml)
    interval: float = 1.0
    capacity: int = 600
    _history: deque[Inventory] = field(init=False, repr=False)
    _lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)
    _stop: threading.Event = field(init=False, repr=False, default_factory=threading.Event)
    _thread: threading.Thread | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._history = deque(maxlen=self.capacity)

    def sample(self) -> Inventory:
        """Take one snapshot now and keep it."""
        inv = self.nvml.snapshot()
        with self._lock:
            self._history.append(inv)
        return inv

    def history(self) -> list[Inventory]:
        """A copy of the kept snapshots, oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def latest(self) -> Inventory | None:
        """The newest snapshot, if any."""
        with self._lock:
            return self._history[-1] if self._history else None

    def run(self, on_sample: Callable[[Inventory], None] | None = None,
            stop: threading.Event | None = None) -> None:
        """Sample until `stop` (or `self.stop()`) is set: call this from a worker thread."""
        stop = stop or self._stop
        while not stop.is_set():
            inv = self.sample()
            if on_sample is not None:
                on_sample(inv)
            if inv.error is not None and not inv.gpus:
                return  # no GPU will appear without a driver reload; sampling on is pointless
            stop.wait(self.interval)

    def start(self, on_sample: Callable[[Inventory], None] | None = None) -> None:
        """Sample on a daemon thread of its own."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(on_sample,), name="gpu-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the sampling thread and shut NVML down."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self.nvml.close()

    def __iter__(self) -> Iterator[Inventory]:
        return iter(self.history())


def inventory(module: ModuleType | None = None) -> Inventory:
    """One snapshot of every GPU, NVML opened and closed around it."""
    nvml = Nvml(module)
    try:
        return nvml.snapshot()
    finally:
        nvml.close()
