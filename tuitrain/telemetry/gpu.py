"""Per-GPU memory, utilisation and processes from NVML, one field and one GPU at a time.

A field a device does not support is `None` (shown `N/A`): utilisation on a MIG-enabled
GPU or a MIG instance, per-process memory without the permission to read it, NVML's v2
memory call on an old driver (then v1 is used). A GPU that falls off the bus
(`GpuIsLost`) is listed as lost from then on, and the others keep being read. MIG
instances of a MIG-enabled GPU are listed after it, each with its own memory and
processes. Where pynvml is missing or no driver answers, `sample()` is empty and `reason`
says why; nothing here raises for a missing GPU.

NVML is not touched until the first `sample()` (see `nvml.py`), so a probe can be built on
the UI thread and sampled from a worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any, Iterable

from tuitrain.telemetry.nvml import MISSING, NO_GPU, SESSION, GpuLost, NvmlSession, field, text

GIB = 2 ** 30
PROBING = "GPU: waiting for the first NVML reading"


@dataclass(frozen=True)
class GpuProcess:
    """A process with a context on a GPU."""

    pid: int
    used_bytes: int | None  # device memory it holds; None when NVML does not say


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU or MIG instance; `None` fields are not supported (N/A)."""

    index: int  # NVML index of the physical GPU (nvidia-smi's numbering, PCI order)
    name: str
    uuid: str | None  # "GPU-…" or "MIG-…"
    mem_used_gib: float | None  # NVML v2 "used" where the driver has it (v1 counts reserved memory too)
    mem_total_gib: float | None
    util_percent: float | None
    mig: int | None = None  # the MIG slot on GPU `index`; None for a whole GPU
    mig_mode: bool | None = None  # whole GPUs: MIG enabled now (None: not MIG-capable or unknown)
    lost: str = ""  # why the GPU stopped answering (its fields are then None)
    processes: tuple[GpuProcess, ...] | None = dataclass_field(default=())  # None: NVML cannot list them

    @property
    def label(self) -> str:
        """`GPU0`, or `GPU0:1` for MIG slot 1 of GPU 0."""
        return f"GPU{self.index}" if self.mig is None else f"GPU{self.index}:{self.mig}"

    @property
    def key(self) -> str:
        """What identifies this device from one reading to the next."""
        return self.uuid or self.label


def gpu_history(readings: Iterable[Any], key: int | str, name: str) -> list[float]:
    """One device's `name` field over `readings` (N/A points left out).

    `key` is a whole GPU's NVML index, or a `GpuSample.key` (its UUID) for any device.
    """
    values = []
    for reading in readings:
        for gpu in reading.gpus:
            if (gpu.index == key and gpu.mig is None) if isinstance(key, int) else gpu.key == key:
                value = getattr(gpu, name)
                if value is not None:
                    values.append(value)
                break
    return values


@dataclass
class _Device:
    index: int
    handle: Any
    name: str
    uuid: str | None
    lost: str = ""


class GpuProbe:
    """Reads every NVIDIA GPU (and MIG instance) through the process's NVML session."""

    def __init__(self) -> None:
        self.session: NvmlSession = SESSION
        self._devices: list[_Device] | None = None
        self._mem_v2: bool | None = None  # None: not tried yet
        self._sampled = False

    @property
    def available(self) -> bool:
        """Whether NVML answered and listed at least one GPU (never initialises NVML)."""
        return self.session.state == "ready" and bool(self._devices)

    @property
    def reason(self) -> str:
        """Why there are no GPU readings ("" when there are)."""
        if self.available:
            return ""
        if self.session.reason:
            return self.session.reason
        return NO_GPU if self._sampled else PROBING

    def sample(self) -> list[GpuSample]:
        """A reading of every GPU and MIG instance; [] without NVML or GPUs."""
        with self.session.lock:  # one reading at a time; shutdown waits for it
            nvml = self.session.begin()
            self._sampled = True
            if nvml is None:
                return []
            if self._devices is None:
                self._devices = self._enumerate(nvml)
            out: list[GpuSample] = []
            for device in self._devices:
                out.extend(self._read(nvml, device))
            return out

    def _enumerate(self, nvml: Any) -> list[_Device]:
        devices = []
        for index in range(field(nvml, nvml.nvmlDeviceGetCount) or 0):
            try:
                handle = field(nvml, nvml.nvmlDeviceGetHandleByIndex, index)
            except GpuLost as exc:
                devices.append(_Device(index, None, "?", None, lost=str(exc)))
                continue
            if handle is None:  # e.g. NoPermission on a GPU not given to this container
                devices.append(_Device(index, None, "?", None, lost="not accessible"))
                continue
            try:
                name = field(nvml, nvml.nvmlDeviceGetName, handle)
                uuid = field(nvml, nvml.nvmlDeviceGetUUID, handle)
            except GpuLost as exc:
                devices.append(_Device(index, handle, "?", None, lost=str(exc)))
                continue
            devices.append(_Device(index, handle, text(name) if name is not None else "?",
                                   text(uuid) if uuid is not None else None))
        return devices

    def _read(self, nvml: Any, device: _Device) -> list[GpuSample]:
        if device.lost:
            return [GpuSample(device.index, device.name, device.uuid, None, None, None, lost=device.lost)]
        try:
            mode = field(nvml, nvml.nvmlDeviceGetMigMode, device.handle)
            mig_on = bool(mode[0]) if mode is not None else None
            whole = self._one(nvml, device.handle, device.index, device.name, device.uuid, None, mig_on)
            out = [whole]
            if mig_on:
                out.extend(self._mig_instances(nvml, device))
            return out
        except GpuLost as exc:
            device.lost = str(exc)
            return [GpuSample(device.index, device.name, device.uuid, None, None, None, lost=device.lost)]

    def _mig_instances(self, nvml: Any, device: _Device) -> list[GpuSample]:
        out = []
        for slot in range(field(nvml, nvml.nvmlDeviceGetMaxMigDeviceCount, device.handle) or 0):
            handle = field(nvml, nvml.nvmlDeviceGetMigDeviceHandleByIndex, device.handle, slot)
            if handle is None:  # NotFound: an empty slot
                continue
            name = field(nvml, nvml.nvmlDeviceGetName, handle)
            uuid = field(nvml, nvml.nvmlDeviceGetUUID, handle)
            out.append(self._one(nvml, handle, device.index, text(name) if name is not None else device.name,
                                 text(uuid) if uuid is not None else None, slot, None))
        return out

    def _one(self, nvml: Any, handle: Any, index: int, name: str, uuid: str | None, mig: int | None,
             mig_mode: bool | None) -> GpuSample:
        mem = self._memory(nvml, handle)
        util = field(nvml, nvml.nvmlDeviceGetUtilizationRates, handle)
        return GpuSample(
            index, name, uuid,
            mem.used / GIB if mem is not None else None,
            mem.total / GIB if mem is not None else None,
            float(util.gpu) if util is not None else None,
            mig=mig, mig_mode=mig_mode, processes=self._processes(nvml, handle))

    def _memory(self, nvml: Any, handle: Any) -> Any:
        """NVML's v2 memory info where the bindings and driver have it, else v1."""
        version = getattr(nvml, "nvmlMemory_v2", None)
        if version is not None and self._mem_v2 is not False:
            try:
                mem = field(nvml, nvml.nvmlDeviceGetMemoryInfo, handle, version=version, tell_missing=True)
            except TypeError:  # bindings older than the version argument
                mem = MISSING
            if mem is MISSING:  # the driver has no nvmlDeviceGetMemoryInfo_v2: stop asking
                self._mem_v2 = False
            elif mem is not None:
                self._mem_v2 = True
                return mem
        return field(nvml, nvml.nvmlDeviceGetMemoryInfo, handle)

    @staticmethod
    def _processes(nvml: Any, handle: Any) -> tuple[GpuProcess, ...] | None:
        found: dict[int, int | None] = {}
        answered = False
        for fn in (nvml.nvmlDeviceGetComputeRunningProcesses, nvml.nvmlDeviceGetGraphicsRunningProcesses):
            procs = field(nvml, fn, handle)
            if procs is None:
                continue
            answered = True
            for proc in procs:
                used = getattr(proc, "usedGpuMemory", None)
                pid = int(proc.pid)
                if pid not in found or (used is not None and (found[pid] or 0) < used):
                    found[pid] = int(used) if used is not None else None
        if not answered:
            return None
        return tuple(GpuProcess(pid, used) for pid, used in sorted(found.items()))
