"""GPU and host telemetry with a bounded history (no torch, no textual).

`TelemetrySampler.sample()` takes one reading of every GPU (NVML) and the host
(psutil) and keeps the last `history` readings, so memory stays bounded however long
the dashboard is open.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from tuitrain.telemetry.gpu import NO_GPU, GpuProbe, GpuSample
from tuitrain.telemetry.host import HostSample, sample_host

__all__ = ["NO_GPU", "GpuProbe", "GpuSample", "HostSample", "Reading", "TelemetrySampler", "sample_host"]


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

    @property
    def gpu_available(self) -> bool:
        """Whether any NVIDIA GPU answers."""
        return self.probe.available

    @property
    def gpu_reason(self) -> str:
        """Why there are no GPU readings ("" when there are)."""
        return self.probe.reason

    def sample(self) -> Reading:
        """Take one reading and remember it."""
        reading = Reading(time.time(), tuple(self.probe.sample()), sample_host())
        self.readings.append(reading)
        return reading

    def gpu_series(self, index: int, field: str) -> list[float]:
        """History of one GPU's `mem_used_gib`, `mem_total_gib` or `util_percent`."""
        return [getattr(r.gpus[index], field) for r in self.readings if index < len(r.gpus)]

    def host_series(self, field: str) -> list[float]:
        """History of the host's `cpu_percent` or `ram_used_gib`."""
        return [getattr(r.host, field) for r in self.readings]
