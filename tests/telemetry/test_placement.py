"""A run's GPUs are NVML's devices with the UUIDs its start event recorded; its memory is
what NVML says its processes (the trainer and every descendant) hold."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from fake_nvml import GIB, FakeGpu, uuid_for, install_nvml  # noqa: F401 (a fixture)
from tuitrain.telemetry import GpuProbe
from tuitrain.telemetry.pane import pane_lines
from tuitrain.telemetry.placement import GpuColumn, bare_uuid, gpu_cell, locate, process_tree

HOST = socket.gethostname()


def cuda_device(*entries, visible=None, host=HOST):
    """A start event's `device` for CUDA devices [(cuda index, bare uuid)…]."""
    return {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "host": host, "cuda_visible_devices": visible,
            "gpus": [{"cuda": i, "uuid": u, "name": "NVIDIA H100 80GB HBM3"} for i, u in entries]}


@pytest.fixture
def family():
    """A trainer with a child that has a child of its own (a dataloader worker, a rank…)."""
    code = ("import subprocess, sys, time; "
            "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 20
        while len(process_tree(parent.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        tree = process_tree(parent.pid)
        assert len(tree) == 2
        yield parent.pid, next(iter(tree - {parent.pid}))
    finally:
        for pid in process_tree(parent.pid) - {parent.pid}:
            subprocess.run(["kill", str(pid)], check=False)
        parent.kill()
        parent.wait()


def test_uuid_prefixes_are_dropped():
    assert bare_uuid("GPU-ABC") == bare_uuid("MIG-abc") == bare_uuid("abc") == "abc"


def test_gpus_are_matched_by_uuid_not_by_index(install_nvml):
    install_nvml([FakeGpu(), FakeGpu(), FakeGpu()])
    gpus = GpuProbe().sample()
    # CUDA_VISIBLE_DEVICES=2,1 made NVML's GPU2 the run's cuda:0
    device = cuda_device((0, bare_uuid(uuid_for(3))), (1, bare_uuid(uuid_for(2))), visible="2,1")
    where = locate(device, gpus)
    assert where.labels == ("GPU2", "GPU1") and where.memory_bytes is None
    assert gpu_cell(device, gpus) == "2,1"
    assert pane_lines([type("R", (), {"gpus": tuple(gpus)})()], "", device)[-1] == \
        "run on GPU2, GPU1 (CUDA_VISIBLE_DEVICES=2,1)"


def test_memory_of_the_runs_processes(install_nvml, family):
    trainer, worker = family
    install_nvml([FakeGpu(processes=[(1, 5 * GIB)]), FakeGpu(processes=[(worker, 3 * GIB), (1, 7 * GIB)])])
    gpus = GpuProbe().sample()
    device = cuda_device((0, bare_uuid(uuid_for(2))))
    assert gpu_cell(device, gpus, process_tree(trainer)) == "1 · 3.0 GiB"
    cells = GpuColumn().cells([("live", device, trainer), ("done", device, None), ("old", None, None),
                               ("cpu", {"type": "cpu", "name": "AMD EPYC"}, None)])
    assert cells == {"live": "1 · 3.0 GiB", "done": "1", "old": "-", "cpu": "cpu"}


def test_a_rank_on_a_gpu_the_start_event_did_not_name(install_nvml, family):
    trainer, worker = family
    install_nvml([FakeGpu(processes=[(trainer, 2 * GIB)]), FakeGpu(processes=[(worker, 2 * GIB)])])
    gpus = GpuProbe().sample()
    where = locate(cuda_device((0, bare_uuid(uuid_for(1)))), gpus, process_tree(trainer))
    assert where.labels == ("GPU0", "GPU1") and where.memory_bytes == 4 * GIB


def test_mig_instance_by_uuid(install_nvml):
    mig = [FakeGpu(name="NVIDIA A100 MIG 3g.20gb", uuid=uuid_for(0xA, "MIG"), total_gib=19.5)]
    install_nvml([FakeGpu(), FakeGpu(mig_capable=True, mig=mig)])
    gpus = GpuProbe().sample()
    assert gpu_cell(cuda_device((0, bare_uuid(uuid_for(0xA, "MIG")))), gpus) == "1:0"


def test_a_run_on_another_host_or_without_nvml_shows_cuda_indices(install_nvml):
    install_nvml([FakeGpu()])
    gpus = GpuProbe().sample()
    assert gpu_cell(cuda_device((0, bare_uuid(uuid_for(1))), host="other-node"), gpus) == "cuda:0"
    assert gpu_cell(cuda_device((0, bare_uuid(uuid_for(1))), (1, None)), []) == "cuda:0,1"


def test_nvml_is_not_read_without_a_cuda_run(install_nvml):
    nvml = install_nvml([FakeGpu()])
    assert GpuColumn().cells([("a", {"type": "cpu"}, 1), ("b", None, None)]) == {"a": "cpu", "b": "-"}
    assert nvml.calls == []
