"""NVML is initialised once per process, lazily, by the thread that samples, and shut down at exit."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from fake_nvml import FakeGpu, install_nvml  # noqa: F401 (a fixture)
from tuitrain.telemetry import TelemetrySampler
from tuitrain.telemetry.nvml import SESSION
from tuitrain.telemetry.placement import GpuColumn

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def test_init_is_lazy_once_and_off_the_building_thread(install_nvml):
    nvml = install_nvml([FakeGpu(), FakeGpu()])
    dashboards = [TelemetrySampler(), TelemetrySampler()]  # built on the "UI" thread
    column = GpuColumn()
    assert nvml.calls == [] and not dashboards[0].gpu_available

    def work():
        for sampler in dashboards:
            sampler.sample()
        column.cells([("run", {"type": "cuda", "gpus": []}, None)])

    threads = [threading.Thread(target=work, name=f"sampler-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    inits = [thread for name, thread in nvml.calls if name == "nvmlInit"]
    assert len(inits) == 1 and inits[0].startswith("sampler-")
    assert all(thread.startswith("sampler-") for _, thread in nvml.calls)
    assert dashboards[1].gpu_available and len(dashboards[1].readings) == 3
    SESSION.shutdown()
    SESSION.shutdown()
    assert nvml.shutdowns == 1 and dashboards[0].sample().gpus == ()  # closed: no more queries


def test_shutdown_waits_for_a_query_in_flight(install_nvml):
    gpus = [FakeGpu()]
    nvml = install_nvml(gpus)
    entered, release = threading.Event(), threading.Event()
    original = nvml.nvmlDeviceGetUtilizationRates

    def slow(handle):
        entered.set()
        release.wait(5)
        return original(handle)

    nvml.nvmlDeviceGetUtilizationRates = slow
    sampler = TelemetrySampler()
    thread = threading.Thread(target=sampler.sample)
    thread.start()
    assert entered.wait(5)
    closer = threading.Thread(target=SESSION.shutdown)
    closer.start()
    closer.join(0.2)
    assert closer.is_alive() and nvml.shutdowns == 0  # NVML is not freed under a running query
    release.set()
    thread.join()
    closer.join()
    assert nvml.shutdowns == 1 and sampler.readings[-1].gpus[0].util_percent == 50.0


SCRIPT = """
import atexit, sys
sys.path.insert(0, {here!r})
from fake_nvml import FakeGpu, fake_pynvml
nvml = sys.modules["pynvml"] = fake_pynvml([FakeGpu()])
atexit.register(lambda: print("inits", nvml.initialised, "shutdowns", nvml.shutdowns))  # runs last
from tuitrain.telemetry import TelemetrySampler
sampler = TelemetrySampler()
for _ in range(3):
    sampler.sample()
print("gpus", len(sampler.readings[-1].gpus))
"""


def test_shutdown_at_interpreter_exit():
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(here=str(HERE))], cwd=REPO, capture_output=True,
                          text=True, timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["gpus", "1", "inits", "1", "shutdowns", "1"]
