"""Per-GPU memory and utilisation from NVML, failing soft.

Where pynvml (nvidia-ml-py) is missing or no NVIDIA driver/GPU answers, `GpuProbe`
reports `available = False` and a plain `reason` ("no NVIDIA GPU") instead of raising.
"""

from __future__ import annotations

from dataclasses import dataclass

NO_GPU = "no NVIDIA GPU"


@dataclass(frozen=True)
class GpuSample:
    """One reading of one GPU."""

    index: int
    name: str
    mem_used_gib: float
    mem_total_gib: float
    util_percent: float


class GpuProbe:
    """Reads every NVIDIA GPU through NVML; `sample()` is empty when there is none."""

    def __init__(self) -> None:
        self.available = False
        self.reason = NO_GPU
        self._nvml = None
        self._handles: list = []
        self._names: list[str] = []
        try:
            import pynvml  # nvidia-ml-py
        except ImportError:
            self.reason = f"{NO_GPU} (pynvml missing: pip install nvidia-ml-py)"
            return
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
            self._names = [_text(pynvml.nvmlDeviceGetName(h)) for h in self._handles]
        except Exception:  # NVMLError and driver-loading failures alike
            self._handles = []
            return
        if not self._handles:
            return
        self._nvml = pynvml
        self.available = True
        self.reason = ""

    def sample(self) -> list[GpuSample]:
        """Current memory and utilisation of each GPU; [] without GPUs or on an NVML error."""
        if not self.available:
            return []
        nvml = self._nvml
        out: list[GpuSample] = []
        try:
            for index, handle in enumerate(self._handles):
                mem = nvml.nvmlDeviceGetMemoryInfo(handle)
                util = nvml.nvmlDeviceGetUtilizationRates(handle)
                out.append(GpuSample(index, self._names[index], mem.used / 2**30, mem.total / 2**30, float(util.gpu)))
        except Exception:
            self.available = False
            self.reason = f"{NO_GPU} (NVML stopped answering)"
            return []
        return out


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
