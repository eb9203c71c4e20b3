"""Telemetry as the UI uses it: fail-soft without GPUs, a bounded history read while the
worker samples, and the dashboard's GPU pane and the Runs table's GPU column on a fake
NVML (MIG, a lost GPU, per-process memory of the run on screen)."""

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "telemetry"))

from fake_nvml import GIB, NOT_SUPPORTED, FakeGpu, fake_pynvml, uuid_for  # noqa: E402

from _dashrun import ScreenApp, sync, write_run  # noqa: E402
from waiting import until  # noqa: E402
from tuitrain.telemetry import NO_GPU, GpuProbe, GpuSample, TelemetrySampler  # noqa: E402
from tuitrain.telemetry.host import HostSample  # noqa: E402


def test_no_gpu_fails_soft(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    probe = GpuProbe()
    assert probe.sample() == []
    assert not probe.available and probe.reason.startswith(NO_GPU) and "nvidia-ml-py" in probe.reason


def test_nvml_init_error_fails_soft(monkeypatch):
    import pynvml

    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([], init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND))
    probe = GpuProbe()
    assert probe.sample() == []
    assert not probe.available and probe.reason == f"{NO_GPU} (NVML: NVML Shared Library Not Found)"


def test_sampler_reads_each_gpu_and_bounds_history(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml([FakeGpu(used_gib=10, util=50),
                                                             FakeGpu(used_gib=20, util=51)]))
    sampler = TelemetrySampler(history=5)
    for _ in range(12):
        reading = sampler.sample()
    assert sampler.gpu_available
    assert len(sampler.readings) == 5
    assert [g.mem_used_gib for g in reading.gpus] == [10, 20]
    assert sampler.gpu_series(1, "util_percent") == [51.0] * 5
    assert reading.host.ram_total_gib > 0 and len(sampler.host_series("cpu_percent")) == 5


class _QuickProbe:
    """A GPU probe that answers at once, so the worker appends as fast as it can."""

    available, reason = True, ""

    def sample(self):
        return [GpuSample(0, "H100", None, 1.0, 80.0, 50.0)]


def test_history_can_be_read_while_the_worker_samples(monkeypatch):
    """The UI reads the history while the worker appends: it used to crash the app with
    "deque mutated during iteration"."""
    monkeypatch.setattr("tuitrain.telemetry.sample_host", lambda: HostSample(1.0, 1.0, 2.0))
    sampler = TelemetrySampler(history=64, probe=_QuickProbe())
    for _ in range(64):
        sampler.sample()
    stop, errors = threading.Event(), []

    def worker():
        while not stop.is_set():
            sampler.sample()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter allows
    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                assert len(sampler.gpu_series(0, "util_percent")) == 64
                assert len(sampler.host_series("cpu_percent")) == 64
            except RuntimeError as exc:
                errors.append(exc)
                break
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(interval)
    assert not errors, errors[0]


def _sleeper():
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])


def _place_run(run: Path, pid: int, device: dict) -> None:
    """Give a written run a live trainer pid and a start event with its `device`."""
    from tuitrain.procid import identify

    info = json.loads((run / "run.json").read_text())
    info.update(pid=pid, trainer=identify(pid).record(), state="running")
    (run / "run.json").write_text(json.dumps(info))
    lines = (run / "metrics.jsonl").read_text().splitlines()
    start = json.loads(lines[0])
    start["device"] = device
    (run / "metrics.jsonl").write_text("\n".join([json.dumps(start), *lines[1:]]) + "\n")


def _h100_device(uuid: str) -> dict:
    import socket

    return {"type": "cuda", "name": "NVIDIA H100 80GB HBM3", "host": socket.gethostname(), "index": 0,
            "cuda_visible_devices": "0", "gpus": [{"cuda": 0, "uuid": uuid[4:], "name": "NVIDIA H100 80GB HBM3"}]}


@sync
async def test_dashboard_gpu_pane_survives_mig_and_a_lost_gpu_and_marks_the_run(tmp_path, monkeypatch):
    from tuitrain.telemetry.pane import chart_series
    from tuitrain.ui.screens.dashboard import DashboardScreen

    trainer = _sleeper()
    try:
        mig = [FakeGpu(name="NVIDIA A100-SXM4-40GB MIG 3g.20gb", uuid=uuid_for(0xA, "MIG"), total_gib=19.5, used_gib=3.0)]
        gpus = [FakeGpu(processes=[(trainer.pid, 3 * GIB), (1, 9 * GIB)]),
                FakeGpu(name="NVIDIA A100-SXM4-40GB", mig_capable=True, mig=mig, total_gib=40.0),
                FakeGpu(errors={"nvmlDeviceGetUtilizationRates": fake_nvml_lost()})]
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
        run = write_run(tmp_path, "on-gpu", steps=20, state="running")
        _place_run(run, trainer.pid, _h100_device(gpus[0].uuid))
        app = ScreenApp(lambda: DashboardScreen(run))
        async with app.run_test(size=(160, 60)) as pilot:
            screen = app.screen
            text = lambda: str(screen.query_one("#gpu-text").render())  # noqa: E731
            await until(pilot, lambda: "◀ this run" in text(), "the GPU pane marking the run's GPU")
            lines = text().splitlines()
            assert lines[:5] == [
                "GPU0 NVIDIA H100 80GB HBM3: 10.0/80.0 GiB  util 50%  ◀ this run (3.0 GiB)",
                "GPU1 NVIDIA A100-SXM4-40GB: 10.0/40.0 GiB  util N/A  MIG on",
                "  GPU1:0 NVIDIA A100-SXM4-40GB MIG 3g.20gb: 3.0/19.5 GiB  util N/A",
                "GPU2 NVIDIA H100 80GB HBM3: lost (GPU is lost)",
                "run on GPU0 (CUDA_VISIBLE_DEVICES=0); its processes hold 3.0 GiB",
            ]
            assert lines[5].startswith("run CUDA: allocated 1.25 GiB") and lines[6].startswith("host CPU")
            names = [label for label, *_ in chart_series(screen.telemetry.snapshot())]
            assert names == ["GPU0 util", "GPU0 mem", "GPU1 mem", "GPU1:0 mem"]  # N/A and lost: no line
            await pilot.press("escape")
    finally:
        trainer.kill()
        trainer.wait()


def fake_nvml_lost():
    import pynvml

    return pynvml.NVML_ERROR_GPU_IS_LOST


@sync
async def test_runs_table_gpu_column_shows_gpus_and_process_memory(tmp_path, monkeypatch):
    from textual.widgets import DataTable

    from tuitrain.ui.screens.runs import RunsScreen

    trainer = _sleeper()
    try:
        gpus = [FakeGpu(), FakeGpu(processes=[(trainer.pid, int(12.5 * GIB))])]
        monkeypatch.setitem(sys.modules, "pynvml", fake_pynvml(gpus))
        root = tmp_path / "runs"
        live = write_run(root, "live", steps=20, state="running")
        _place_run(live, trainer.pid, _h100_device(gpus[1].uuid))
        on_cpu = write_run(root, "cpu-run", steps=20)
        start, *rest = (on_cpu / "metrics.jsonl").read_text().splitlines()
        start = json.loads(start)
        start["device"] = {"type": "cpu", "name": "AMD EPYC"}
        (on_cpu / "metrics.jsonl").write_text("\n".join([json.dumps(start), *rest]) + "\n")
        write_run(root, "old", steps=20)  # a start event from before devices were recorded
        app = ScreenApp(lambda: RunsScreen(root))
        async with app.run_test(size=(160, 40)) as pilot:
            screen = app.screen
            await until(pilot, lambda: screen.loaded and screen.query_one(DataTable).row_count == 3,
                        "the Runs table's three rows")
            table = screen.query_one(DataTable)
            gpu = {str(table.get_row_at(i)[1].plain): table.get_row_at(i)[-1].plain for i in range(3)}
            assert gpu == {"live": "1 · 12.5 GiB", "cpu-run": "cpu", "old": "-"}
    finally:
        trainer.kill()
        trainer.wait()
