"""A fake `pynvml` for tests: the real bindings' errors, structs and signatures, fake GPUs.

Everything but the driver call is the installed nvidia-ml-py's own: errors are raised as
`pynvml.NVMLError(code)` (which the real module maps to its `NVMLError_*` subclass),
memory and utilisation come back in the real ctypes structs, processes as the real
`nvmlFriendlyObject` with `usedGpuMemory = None` where NVML says "not available", and
names and UUIDs as `str` (the bindings decode them). `test_fake_matches_real_bindings`
checks that every function here exists in the real module with the same parameters.
"""

from __future__ import annotations

import sys
import threading
import types
from dataclasses import dataclass, field

import pynvml as real
import pytest

GIB = 2 ** 30
NOT_SUPPORTED = real.NVML_ERROR_NOT_SUPPORTED
GPU_IS_LOST = real.NVML_ERROR_GPU_IS_LOST
NO_PERMISSION = real.NVML_ERROR_NO_PERMISSION
FUNCTION_NOT_FOUND = real.NVML_ERROR_FUNCTION_NOT_FOUND


def uuid_for(n: int, prefix: str = "GPU") -> str:
    """A well-formed NVML UUID ("GPU-…" / "MIG-…")."""
    return f"{prefix}-{n:08x}-1111-2222-3333-{n:012x}"


@dataclass
class FakeGpu:
    """One GPU (or MIG instance) as the driver would report it."""

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = ""
    total_gib: float = 80.0
    used_gib: float = 10.0  # what NVML v2 calls used
    reserved_gib: float = 0.5  # set aside by the driver: v1 "used" counts it, v2 does not
    util: int = 50
    # (pid, bytes or None): compute processes; None bytes = NVML_VALUE_NOT_AVAILABLE
    processes: list[tuple[int, int | None]] = field(default_factory=list)
    mig_capable: bool = False
    mig: list["FakeGpu | None"] | None = None  # MIG enabled: its slots (None = empty slot)
    errors: dict[str, int] = field(default_factory=dict)  # function name -> NVML error code
    lost: bool = False  # every call on it raises GpuIsLost

    @property
    def mig_enabled(self) -> bool:
        return self.mig is not None


class _Handle:
    """Stands in for `c_nvmlDevice_t` (an opaque pointer)."""

    def __init__(self, gpu: FakeGpu, parent: FakeGpu | None = None) -> None:
        self.gpu, self.parent = gpu, parent


def fake_pynvml(gpus: list[FakeGpu], *, driver_has_v2: bool = True, init_error: int | None = None) -> types.ModuleType:
    """A module object to put in `sys.modules["pynvml"]`; `.calls` records each call and thread."""
    mod = types.ModuleType("pynvml")
    for name, value in vars(real).items():  # errors, constants, struct types, nvmlMemory_v2
        if name.startswith(("NVMLError", "NVML_", "c_nvml", "nvmlMemory_v")):
            setattr(mod, name, value)
    mod.calls = []  # (function name, thread name)
    mod.initialised = 0
    mod.shutdowns = 0
    for i, gpu in enumerate(gpus):
        gpu.uuid = gpu.uuid or uuid_for(i + 1)

    def call(name: str, handle: _Handle | None = None) -> FakeGpu | None:
        mod.calls.append((name, threading.current_thread().name))
        if name not in ("nvmlInit", "nvmlShutdown") and mod.initialised <= mod.shutdowns:
            raise real.NVMLError(real.NVML_ERROR_UNINITIALIZED)
        if handle is None:
            return None
        gpu = handle.gpu
        if gpu.lost or (handle.parent is not None and handle.parent.lost):
            raise real.NVMLError(GPU_IS_LOST)
        if name in gpu.errors:
            raise real.NVMLError(gpu.errors[name])
        return gpu

    def nvmlInit():
        call("nvmlInit")
        if init_error is not None:
            raise real.NVMLError(init_error)
        mod.initialised += 1

    def nvmlShutdown():
        call("nvmlShutdown")
        if mod.initialised <= mod.shutdowns:
            raise real.NVMLError(real.NVML_ERROR_UNINITIALIZED)
        mod.shutdowns += 1

    def nvmlDeviceGetCount():
        call("nvmlDeviceGetCount")
        return len(gpus)

    def nvmlDeviceGetHandleByIndex(index):
        call("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(gpus):
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        if gpus[index].lost:
            raise real.NVMLError(GPU_IS_LOST)
        return _Handle(gpus[index])

    def nvmlDeviceGetName(handle):
        return call("nvmlDeviceGetName", handle).name

    def nvmlDeviceGetUUID(handle):
        return call("nvmlDeviceGetUUID", handle).uuid

    def nvmlDeviceGetMemoryInfo(handle, version=None):
        gpu = call("nvmlDeviceGetMemoryInfo", handle)
        total, used, reserved = (int(x * GIB) for x in (gpu.total_gib, gpu.used_gib, gpu.reserved_gib))
        if not version:  # v1: "used" includes what the driver reserved
            return real.c_nvmlMemory_t(total=total, free=total - used - reserved, used=used + reserved)
        if not driver_has_v2:  # what _nvmlGetFunctionPointer raises for a missing symbol
            raise real.NVMLError(FUNCTION_NOT_FOUND)
        return real.c_nvmlMemory_v2_t(version=version, total=total, reserved=reserved,
                                      free=total - used - reserved, used=used)

    def nvmlDeviceGetUtilizationRates(handle):
        gpu = call("nvmlDeviceGetUtilizationRates", handle)
        if gpu.mig_enabled or handle.parent is not None:  # MIG: no utilisation counters
            raise real.NVMLError(NOT_SUPPORTED)
        return real.c_nvmlUtilization_t(gpu=gpu.util, memory=gpu.util // 2)

    def nvmlDeviceGetMigMode(device):
        gpu = call("nvmlDeviceGetMigMode", device)
        if not gpu.mig_capable or device.parent is not None:
            raise real.NVMLError(NOT_SUPPORTED)
        return [int(gpu.mig_enabled), int(gpu.mig_enabled)]

    def nvmlDeviceGetMaxMigDeviceCount(device):
        gpu = call("nvmlDeviceGetMaxMigDeviceCount", device)
        if not gpu.mig_capable:
            raise real.NVMLError(NOT_SUPPORTED)
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(device, index):
        gpu = call("nvmlDeviceGetMigDeviceHandleByIndex", device)
        if not gpu.mig_enabled:
            raise real.NVMLError(real.NVML_ERROR_INVALID_ARGUMENT)
        slots = gpu.mig or []
        if index >= len(slots) or slots[index] is None:
            raise real.NVMLError(real.NVML_ERROR_NOT_FOUND)
        return _Handle(slots[index], parent=gpu)

    def _processes(name, handle, graphics=False):
        gpu = call(name, handle)
        if gpu.mig_enabled:  # the whole GPU in MIG mode: aggregate only for the privileged
            raise real.NVMLError(NO_PERMISSION)
        out = []
        for pid, used in ([] if graphics else gpu.processes):
            raw = real.NVML_VALUE_NOT_AVAILABLE_ulonglong.value if used is None else used
            obj = real.nvmlStructToFriendlyObject(real.c_nvmlProcessInfo_v3_t(pid=pid, usedGpuMemory=raw))
            if obj.usedGpuMemory == real.NVML_VALUE_NOT_AVAILABLE_ulonglong.value:
                obj.usedGpuMemory = None  # as the bindings do
            out.append(obj)
        return out

    def nvmlDeviceGetComputeRunningProcesses(handle):
        return _processes("nvmlDeviceGetComputeRunningProcesses", handle)

    def nvmlDeviceGetGraphicsRunningProcesses(handle):
        return _processes("nvmlDeviceGetGraphicsRunningProcesses", handle, graphics=True)

    def nvmlSystemGetDriverVersion():
        call("nvmlSystemGetDriverVersion")
        return "570.86.15"

    for fn in (nvmlInit, nvmlShutdown, nvmlDeviceGetCount, nvmlDeviceGetHandleByIndex, nvmlDeviceGetName,
               nvmlDeviceGetUUID, nvmlDeviceGetMemoryInfo, nvmlDeviceGetUtilizationRates, nvmlDeviceGetMigMode,
               nvmlDeviceGetMaxMigDeviceCount, nvmlDeviceGetMigDeviceHandleByIndex,
               nvmlDeviceGetComputeRunningProcesses, nvmlDeviceGetGraphicsRunningProcesses,
               nvmlSystemGetDriverVersion):
        setattr(mod, fn.__name__, fn)
    mod.FAKED = [n for n in vars(mod) if n.startswith("nvml") and callable(getattr(mod, n))
                 and not n.startswith("nvmlMemory")]
    return mod


@pytest.fixture
def install_nvml(monkeypatch):
    """`install_nvml([FakeGpu(), …], **options)` puts a fake pynvml in sys.modules; returns it."""

    def install(gpus: list[FakeGpu], **options):
        module = fake_pynvml(gpus, **options)
        monkeypatch.setitem(sys.modules, "pynvml", module)
        return module

    return install
