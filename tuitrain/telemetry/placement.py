"""Which GPUs a run is on, and how much device memory its processes hold.

A run's `start` event records its `device` (see `tuitrain.engine.device_info`): the CUDA
devices of its ranks with their UUIDs, and the host. NVML numbers GPUs in PCI order while
CUDA may not (and `CUDA_VISIBLE_DEVICES` renumbers them), so a run's GPUs are found among
NVML's by UUID, never by index. The memory is NVML's per-process figure summed over the
run's processes: its trainer (run.json's `pid`, torchrun itself under torchrun) and every
descendant (each rank runs in a session of its own, so a process group would miss them).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import psutil

from tuitrain.telemetry.gpu import GIB, GpuProbe, GpuSample


def bare_uuid(uuid: str | None) -> str:
    """A UUID without NVML's `GPU-` / `MIG-` prefix, lower case (CUDA reports it bare)."""
    text = (uuid or "").strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


def process_trees(roots: Iterable[int | None]) -> dict[int, frozenset[int]]:
    """Each running root pid with all its descendants, from one scan of the process table."""
    wanted = {int(pid) for pid in roots if pid}
    if not wanted:
        return {}
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["pid", "ppid"]):
        info = proc.info
        children.setdefault(info.get("ppid") or 0, []).append(info["pid"])
    alive = {pid for kids in children.values() for pid in kids}
    out = {}
    for root in wanted & alive:
        tree, todo = {root}, [root]
        while todo:
            for child in children.get(todo.pop(), ()):
                if child not in tree:
                    tree.add(child)
                    todo.append(child)
        out[root] = frozenset(tree)
    return out


def process_tree(pid: int | None) -> frozenset[int]:
    """`pid` and all its descendants (empty when it is not running)."""
    return process_trees([pid]).get(int(pid), frozenset()) if pid else frozenset()


@dataclass(frozen=True)
class RunGpus:
    """Where a run trains, as far as this machine can tell."""

    kind: str  # "cuda", "cpu", … (the start event's device type); "" when unknown
    labels: tuple[str, ...]  # NVML labels ("GPU0", "GPU1:0") of its GPUs found by UUID, else "cuda:N"
    keys: frozenset[str]  # `GpuSample.key` of the GPUs found
    memory_bytes: int | None  # device memory its processes hold; None when NVML does not tell
    per_gpu: tuple[tuple[str, int], ...] = ()  # (GpuSample.key, bytes) where its processes hold memory


def _recorded_gpus(device: dict[str, Any]) -> list[dict[str, Any]]:
    gpus = device.get("gpus")
    return [g for g in gpus if isinstance(g, dict)] if isinstance(gpus, list) else []


def locate(device: dict[str, Any] | None, gpus: Sequence[GpuSample], pids: Iterable[int] = ()) -> RunGpus:
    """Match a run's recorded `device` to NVML's GPUs (by UUID) and sum its processes' memory."""
    if not isinstance(device, dict):
        return RunGpus("", (), frozenset(), None)
    kind = str(device.get("type") or "")
    recorded = _recorded_gpus(device)
    here = device.get("host") in (None, socket.gethostname())
    by_uuid = {bare_uuid(g.uuid): g for g in gpus if g.uuid} if here else {}
    found = [by_uuid.get(bare_uuid(entry.get("uuid"))) for entry in recorded if entry.get("uuid")]
    mine = [g for g in found if g is not None]
    pids = frozenset(pids) if here else frozenset()
    total, known, per_gpu = 0, False, []
    for gpu in gpus:
        procs = [p for p in gpu.processes or () if p.pid in pids]
        if not procs:
            continue
        if gpu not in mine:  # e.g. another rank's GPU, or a start event from before UUIDs were recorded
            mine.append(gpu)
        if any(p.used_bytes is not None for p in procs):
            held = sum(p.used_bytes or 0 for p in procs)
            known, total = True, total + held
            per_gpu.append((gpu.key, held))
    if mine:
        labels = tuple(dict.fromkeys(g.label for g in mine))
    else:  # not found here (another host, NVML unavailable): CUDA's own numbering
        labels = tuple(f"cuda:{entry.get('cuda', '?')}" for entry in recorded)
    return RunGpus(kind, labels, frozenset(g.key for g in mine), total if known else None, tuple(per_gpu))


def gib(nbytes: int) -> str:
    """Bytes as GiB with one decimal."""
    return f"{nbytes / GIB:.1f} GiB"


def gpu_cell(device: dict[str, Any] | None, gpus: Sequence[GpuSample], pids: Iterable[int] = ()) -> str:
    """The Runs table's GPU column: `0,1 · 12.3 GiB`, `0`, `cuda:0`, `cpu` or `-` (unknown)."""
    where = locate(device, gpus, pids)
    if not where.kind:
        return "-"
    if where.kind != "cuda":
        return where.kind
    labels = where.labels or ("cuda",)
    for prefix in ("GPU", "cuda:"):  # "0,1" for NVML's GPU0 and GPU1; "cuda:0,1" when not found
        if all(lab.startswith(prefix) for lab in labels):
            text = (prefix if prefix == "cuda:" else "") + ",".join(lab[len(prefix):] for lab in labels)
            break
    else:
        text = ",".join(labels)
    return f"{text} · {gib(where.memory_bytes)}" if where.memory_bytes else text


class GpuColumn:
    """The Runs table's GPU column for every run, from one NVML reading and one process scan.

    NVML is read only while some run trains on CUDA; call `cells` from a worker thread.
    """

    def __init__(self, probe: GpuProbe | None = None) -> None:
        self.probe = probe if probe is not None else GpuProbe()

    def cells(self, runs: Iterable[tuple[str, dict[str, Any] | None, int | None]]) -> dict[str, str]:
        """`{key: cell}` for `(key, start event device, pid of a live trainer or None)` triples."""
        runs = list(runs)
        on_cuda = [(key, device, pid) for key, device, pid in runs
                   if isinstance(device, dict) and device.get("type") == "cuda"]
        gpus = self.probe.sample() if on_cuda else []
        trees = process_trees(pid for _, _, pid in on_cuda) if any(g.processes for g in gpus) else {}
        return {key: gpu_cell(device, gpus, trees.get(pid, frozenset()) if pid else frozenset())
                for key, device, pid in runs}
