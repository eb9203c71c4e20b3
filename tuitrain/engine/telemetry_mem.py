"""Memory figures: CUDA memory for `train` events (GiB, nothing on a CPU), and HF's
`TrainerMemoryTracker` stage deltas for the summary when `skip_memory_metrics = false`.

The stage figures are transformers' (`init_mem_cpu_alloc_delta`, `train_mem_cpu_peaked_delta`,
`before_init_mem_cpu`, and the `_gpu_` ones on CUDA), in bytes: the resident set at the
stage's end less at its start, and how far the peak rose above the end. HF samples the peak
with a busy thread; here the kernel keeps it (`VmHWM`, reset per stage through
`/proc/self/clear_refs`), so measuring costs nothing while training.
"""

from __future__ import annotations

import os
import resource

import torch

GIB = 1024 ** 3
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def cpu_rss() -> int:
    """This process's resident set in bytes."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _reset_peak() -> None:
    """Start a new peak-RSS window (Linux ≥ 4.0); where it cannot, the lifetime peak stands."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
    except OSError:
        pass


def _peak_rss() -> int:
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryTracker:
    """Per-stage memory of the trainer process (inactive with `skip_memory_metrics`)."""

    def __init__(self, enabled: bool, device: torch.device) -> None:
        self.enabled = enabled
        self.cuda = enabled and device.type == "cuda"
        self.device = device
        self.stages: dict[str, dict[str, int]] = {}
        self._gpu_peak = 0
        self._open: tuple[str, int, int] | None = None

    def start(self, stage: str) -> None:
        """Begin measuring `stage` ("init", "train")."""
        if not self.enabled:
            return
        _reset_peak()
        gpu = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            gpu = torch.cuda.memory_allocated(self.device)
            self._gpu_peak = gpu
        self._open = (stage, cpu_rss(), gpu)

    def stop(self) -> None:
        """End the stage begun last."""
        if not self.enabled or self._open is None:
            return
        stage, cpu_begin, gpu_begin = self._open
        cpu_end = cpu_rss()
        figures = {"cpu_begin": cpu_begin, "cpu_alloc": cpu_end - cpu_begin,
                   "cpu_peaked": max(0, _peak_rss() - cpu_end)}
        if self.cuda:
            gpu_end = torch.cuda.memory_allocated(self.device)
            peak = max(self._gpu_peak, torch.cuda.max_memory_allocated(self.device))
            figures.update(gpu_begin=gpu_begin, gpu_alloc=gpu_end - gpu_begin, gpu_peaked=max(0, peak - gpu_end))
        self.stages[stage] = figures
        self._open = None

    def summary_fields(self) -> dict[str, int]:
        """HF's names for the stages measured so far (the init stage once, as HF reports it)."""
        out: dict[str, int] = {}
        init = self.stages.pop("init", None)
        if init is not None:
            out["before_init_mem_cpu"] = init["cpu_begin"]
            if "gpu_begin" in init:
                out["before_init_mem_gpu"] = init["gpu_begin"]
        for stage, figures in ([("init", init)] if init else []) + list(self.stages.items()):
            for kind in ("cpu", "gpu"):
                if f"{kind}_alloc" in figures:
                    out[f"{stage}_mem_{kind}_alloc_delta"] = figures[f"{kind}_alloc"]
                    out[f"{stage}_mem_{kind}_peaked_delta"] = figures[f"{kind}_peaked"]
        self.stages.clear()
        return out

    def window_fields(self, peak: bool) -> dict[str, float]:
        """The `train` event's CUDA figures (`memory_fields`), keeping the stage peak."""
        if self.cuda and peak:
            self._gpu_peak = max(self._gpu_peak, torch.cuda.max_memory_allocated(self.device))
        return memory_fields(self.device, peak)


def memory_fields(device: torch.device, peak: bool = True) -> dict[str, float]:
    """`gpu_mem_allocated_gib`, `gpu_mem_reserved_gib` and (with `peak`) `gpu_mem_peak_gib`,
    whose counter is reset so each logging window reports its own peak."""
    if device.type != "cuda":
        return {}
    out = {"gpu_mem_allocated_gib": round(torch.cuda.memory_allocated(device) / GIB, 4),
           "gpu_mem_reserved_gib": round(torch.cuda.memory_reserved(device) / GIB, 4)}
    if peak:
        out["gpu_mem_peak_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 4)
        torch.cuda.reset_peak_memory_stats(device)
    return out
