"""Which device a run trains on, for its `start` event, and a warning when it is not the
GPU the preset asked for.

`describe(ctx)` is the `device` field of the `start` event: the device type and name, the
CUDA devices of this node's ranks with their UUIDs (the tuitrain UI matches them to NVML's
GPUs by UUID: NVML numbers GPUs in PCI order, CUDA may not), `CUDA_VISIBLE_DEVICES`, the
host, the trainer's pid and the torch/CUDA versions.

`cpu_fallback_warnings(preset, ctx)`: when CUDA fails to initialise, torch reports no GPU
and a run would train on the CPU without a word. A run that lands on the CPU although its
preset asks for a GPU (bf16/fp16, tf32, nccl, `launch.visible_devices`, `nproc_per_node =
"gpu"`), or although torch is a CUDA build, gets a warning naming the settings and why
CUDA is not there; `distributed.use_cpu = true` says the CPU is meant and silences it.
"""

from __future__ import annotations

import os
import platform
import socket
from typing import Any

import torch

GIB = 1024 ** 3

# Preset values that only make sense on a GPU: (field, predicate on its value).
_ASKS_FOR_GPU = (
    ("precision.bf16", bool),
    ("precision.fp16", bool),
    ("precision.bf16_full_eval", bool),
    ("precision.fp16_full_eval", bool),
    ("precision.tf32", bool),
    ("distributed.ddp_backend", lambda v: v == "nccl"),
    ("launch.visible_devices", lambda v: v not in (None, "")),
    ("launch.nproc_per_node", lambda v: v == "gpu"),
)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _gpu(index: int) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    return {"cuda": index, "name": str(props.name), "uuid": str(uuid) if uuid is not None else None,
            "memory_gib": round(props.total_memory / GIB, 2), "capability": f"{props.major}.{props.minor}"}


def describe(ctx: Any) -> dict[str, Any]:
    """The `start` event's `device`: where this node's ranks train (rank 0 writes it)."""
    device = ctx.device
    info: dict[str, Any] = {"type": device.type, "host": socket.gethostname(), "pid": os.getpid(),
                            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
                            "torch": torch.__version__, "cuda": torch.version.cuda}
    if device.type == "cuda":
        # Under torchrun each local rank takes cuda:LOCAL_RANK, so this node uses 0..n-1.
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        count = torch.cuda.device_count()
        first = device.index or 0
        indices = sorted({first, *range(min(local, count))}) if ctx.world_size > 1 else [first]
        info["index"] = first
        info["gpus"] = [_gpu(i) for i in indices]
        info["name"] = info["gpus"][indices.index(first)]["name"]
    else:
        info["name"] = _cpu_name() if device.type == "cpu" else device.type
        if device.type == "cpu":
            problem = cuda_problem()
            if problem:
                info["cuda_error"] = problem
    return info


def cuda_problem() -> str:
    """Why torch sees no CUDA device ("" when it does)."""
    if torch.version.cuda is None:
        return "this torch build has no CUDA support (a CPU wheel)"
    if torch.cuda.is_available():
        return ""  # (never init CUDA for a run that chose the CPU: a context costs GPU memory)
    try:
        torch.cuda.init()
    except Exception as exc:  # noqa: BLE001 - whatever CUDA says is the reason
        lines = str(exc).strip().splitlines()
        return f"CUDA failed to initialise: {lines[0] if lines else type(exc).__name__}"
    if torch.cuda.device_count() == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return "no CUDA device is visible" + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else "")
    return ""


def cpu_fallback_warnings(preset: Any, ctx: Any) -> list[str]:
    """Warnings for a run on the CPU that was not asked to be; printed here (rank 0)."""
    args = preset.args
    if ctx.device.type != "cpu" or args.use_cpu:
        return []
    values = preset.values()
    asked = [name for name, wants in _ASKS_FOR_GPU if wants(values.get(name))]
    if not asked and torch.version.cuda is None:
        return []  # a CPU build of torch and a preset for the CPU: nothing unexpected
    problem = cuda_problem() or "torch reports no GPU"
    what = f"{', '.join(asked)} ask{'s' if len(asked) == 1 else ''} for a GPU" if asked else "torch is a CUDA build"
    message = (f"{what}, but this run trains on the CPU: {problem} "
               "(set distributed.use_cpu = true to train on the CPU on purpose)")
    if ctx.is_main:
        print(f"warning: {message}", flush=True)
    return [message]
