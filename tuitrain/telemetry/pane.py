"""The text and chart series of the dashboard's GPU pane, from one telemetry snapshot.

Pure functions of a `snapshot()` (never the live history), so the UI draws a consistent
picture while the worker keeps sampling. What a device does not support reads `N/A`; a
lost GPU stays listed as lost; MIG instances are indented under their GPU; the GPUs of
the run on screen are marked with the memory its processes hold there.
"""

from __future__ import annotations

from typing import Any, Sequence

from tuitrain.telemetry.gpu import GpuSample
from tuitrain.telemetry.placement import RunGpus, gib, locate

NA = "N/A"
MARK = "◀ this run"


def _memory(g: GpuSample) -> str:
    if g.mem_used_gib is None or g.mem_total_gib is None:
        return f"memory {NA}"
    return f"{g.mem_used_gib:.1f}/{g.mem_total_gib:.1f} GiB"


def gpu_line(g: GpuSample, run: RunGpus | None = None) -> str:
    """One device: label, name, memory, utilisation, MIG mode, and whether the run uses it."""
    indent = "  " if g.mig is not None else ""
    if g.lost:
        return f"{indent}{g.label} {g.name}: lost ({g.lost})"
    util = f"{g.util_percent:.0f}%" if g.util_percent is not None else NA
    parts = [f"{indent}{g.label} {g.name}: {_memory(g)}", f"util {util}"]
    if g.mig_mode:
        parts.append("MIG on")
    if run is not None and g.key in run.keys:
        held = dict(run.per_gpu).get(g.key)
        parts.append(f"{MARK}" + (f" ({gib(held)})" if held else ""))
    return "  ".join(parts)


def run_line(device: dict[str, Any] | None, run: RunGpus) -> str:
    """Where the run trains: its GPUs (NVML labels), CUDA_VISIBLE_DEVICES, its processes' memory."""
    if not isinstance(device, dict) or not run.kind:
        return ""
    if run.kind != "cuda":
        name = device.get("name")
        text = f"run on {run.kind}" + (f" ({name})" if name else "")
        problem = device.get("cuda_error")
        return text + (f": {problem}" if problem else "")
    text = "run on " + ", ".join(run.labels or ("cuda",))
    visible = device.get("cuda_visible_devices")
    if visible is not None:
        text += f" (CUDA_VISIBLE_DEVICES={visible})"
    if run.memory_bytes is not None:
        text += f"; its processes hold {gib(run.memory_bytes)}"
    return text


def pane_lines(readings: Sequence[Any], reason: str, device: dict[str, Any] | None = None,
               pids: frozenset[int] = frozenset()) -> list[str]:
    """The GPU lines of the pane: every device of the last reading, then the run's placement."""
    gpus = readings[-1].gpus if readings else ()
    run = locate(device, gpus, pids)
    lines = [reason] if reason and not gpus else [gpu_line(g, run) for g in gpus]
    placement = run_line(device, run)
    if placement:
        lines.append(placement)
    return lines


def _points(readings: Sequence[Any], key: str, name: str, last_t: float) -> list[tuple[float, float]]:
    """(seconds before the latest reading, value) of one device's field; N/A points left out."""
    points = []
    for reading in readings:
        for gpu in reading.gpus:
            if gpu.key == key:
                value = getattr(gpu, name)
                if value is not None:
                    points.append((reading.t - last_t, value))
                break
    return points


def chart_series(readings: Sequence[Any]) -> list[tuple[str, list[float], list[float]]]:
    """(label, xs, ys) per device of the last reading: utilisation and memory in percent, xs in
    seconds before the latest reading."""
    out: list[tuple[str, list[float], list[float]]] = []
    if not readings:
        return out
    last_t = readings[-1].t
    for g in readings[-1].gpus:
        if g.lost:
            continue
        util = _points(readings, g.key, "util_percent", last_t)
        if util:
            out.append((f"{g.label} util", [x for x, _ in util], [y for _, y in util]))
        used = dict(_points(readings, g.key, "mem_used_gib", last_t))
        total = dict(_points(readings, g.key, "mem_total_gib", last_t))
        mem = [(x, 100 * u / max(total[x], 1e-9)) for x, u in used.items() if x in total]
        if mem:
            out.append((f"{g.label} mem", [x for x, _ in mem], [y for _, y in mem]))
    return out
