"""GPU and host telemetry with a bounded history (no torch, no textual).

`TelemetrySampler.sample()` (from a worker thread) takes one reading of every GPU (NVML)
and the host (psutil) and keeps the last `history` readings, so memory stays bounded
however long the dashboard is open. Readers on other threads take one `snapshot()` (a
tuple, copied under the sampler's lock) and draw everything from it: iterating the live
history while the worker appends to it fails with "deque mutated during iteration".
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

from tuitrain.telemetry.gpu import NO_GPU, GpuProbe, GpuProcess, GpuSample, gpu_history
from tuitrain.telemetry.host import HostSample, sample_host

__all__ = ["NO_GPU", "GpuProbe", "GpuProcess", "GpuSample", "HostSample", "Reading", "TelemetrySampler",
           "sample_host"]


@dataclass(frozen=True)
class Reading:
    """GPUs and host at one moment."""

    t: float
    gpus: tuple[GpuSample, ...]
    host: HostSample


class TelemetrySampler:
    """Samples GPUs and host; keeps the last `history` readings."""

    def __init__(self, history: int = 600, probe: GpuProbe | None = None) -> None:
        self.probe = probe if probe is not None else GpuProbe()
        self.readings: deque[Reading] = deque(maxlen=history)
        self._lock = threading.Lock()
        self.error = ""

    @property
    def gpu_available(self) -> bool:
        """Whether any NVIDIA GPU answers."""
        return self.probe.available

    @property
    def gpu_reason(self) -> str:
        """Why there are no GPU readings ("" when there are)."""
        return self.error or self.probe.reason

    def sample(self) -> Reading:
        """Take one reading and remember it (NVML is initialised by the first call).

        A failure inside the GPU probe that is not an NVML answer (a bug, a broken driver
        library) leaves that reading without GPUs and is kept in `error`; sampling goes on.
        """
        try:
            gpus, self.error = tuple(self.probe.sample()), ""
        except Exception as exc:  # noqa: BLE001 - the dashboard must outlive a telemetry fault
            gpus, self.error = (), f"GPU telemetry failed: {type(exc).__name__}: {exc}"
        reading = Reading(time.time(), gpus, sample_host())
        with self._lock:
            self.readings.append(reading)
        return reading

    def snapshot(self) -> tuple[Reading, ...]:
        """The history as it is now, safe to iterate while the worker keeps sampling."""
        with self._lock:
            return tuple(self.readings)

    def gpu_series(self, key: int | str, field: str, readings: tuple[Reading, ...] | None = None) -> list[float]:
        """History of one GPU's `mem_used_gib`, `mem_total_gib` or `util_percent` (N/A points left out).

        `key` is a whole GPU's NVML index, or a `GpuSample.key` (its UUID) for any device;
        `readings` is a `snapshot()` to draw from (one is taken when not given).
        """
        return gpu_history(self.snapshot() if readings is None else readings, key, field)

    def host_series(self, field: str, readings: tuple[Reading, ...] | None = None) -> list[float]:
        """History of the host's `cpu_percent` or `ram_used_gib`."""
        return [getattr(r.host, field) for r in (self.snapshot() if readings is None else readings)]
