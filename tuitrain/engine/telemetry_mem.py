"""CUDA memory figures for `train` events (GiB); nothing on a CPU."""

from __future__ import annotations

import torch

GIB = 1024 ** 3


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
