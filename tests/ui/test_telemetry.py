import sys
from types import SimpleNamespace

from tuitrain.telemetry import NO_GPU, GpuProbe, TelemetrySampler


def test_no_gpu_fails_soft(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import raises ImportError
    probe = GpuProbe()
    assert not probe.available and probe.reason.startswith(NO_GPU) and "nvidia-ml-py" in probe.reason
    assert probe.sample() == []


def test_nvml_init_error_fails_soft(monkeypatch):
    def boom():
        raise RuntimeError("NVML Shared Library Not Found")

    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(nvmlInit=boom))
    probe = GpuProbe()
    assert not probe.available and probe.reason == NO_GPU


def _fake_nvml(used):
    return SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda h: b"H100",
        nvmlDeviceGetMemoryInfo=lambda h: SimpleNamespace(used=used[h] * 2**30, total=80 * 2**30),
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=50 + h),
    )


def test_sampler_reads_each_gpu_and_bounds_history(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml([10, 20]))
    sampler = TelemetrySampler(history=5)
    assert sampler.gpu_available
    for _ in range(12):
        reading = sampler.sample()
    assert len(sampler.readings) == 5
    assert [g.mem_used_gib for g in reading.gpus] == [10, 20]
    assert sampler.gpu_series(1, "util_percent") == [51.0] * 5
    assert reading.host.ram_total_gib > 0 and len(sampler.host_series("cpu_percent")) == 5
