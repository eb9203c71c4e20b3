"""Host CPU and RAM from psutil."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True)
class HostSample:
    """One reading of the host."""

    cpu_percent: float
    ram_used_gib: float
    ram_total_gib: float


def sample_host() -> HostSample:
    """CPU utilisation since the previous call (non-blocking) and RAM in use."""
    mem = psutil.virtual_memory()
    return HostSample(psutil.cpu_percent(interval=None), (mem.total - mem.available) / 2**30, mem.total / 2**30)
