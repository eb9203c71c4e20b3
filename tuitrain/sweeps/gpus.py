"""The GPUs a `--parallel per-gpu` sweep hands out, one per running member."""

from __future__ import annotations

import os


def visible_gpus() -> list[str]:
    """The GPUs members may be given, as `CUDA_VISIBLE_DEVICES` values: this process's
    `CUDA_VISIBLE_DEVICES` list when set, else every whole GPU NVML lists (none without NVML)."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [d.strip() for d in given.split(",") if d.strip() and d.strip() != "-1"]
    from tuitrain.telemetry.gpu import GpuProbe

    try:
        samples = GpuProbe().sample()
    except Exception:  # noqa: BLE001 - no driver, no NVML: no GPU to hand out
        return []
    return [str(s.index) for s in samples if s.mig is None and not s.lost]
