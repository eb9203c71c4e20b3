"""GpuProbe on a fake NVML: per-field N/A, MIG instances, a lost GPU, v2 memory, processes."""

from __future__ import annotations

import pytest

from fake_nvml import GIB, GPU_IS_LOST, NOT_SUPPORTED, NO_PERMISSION, FakeGpu, uuid_for, install_nvml  # noqa: F401 (a fixture)
from tuitrain.telemetry import NO_GPU, GpuProbe, GpuProcess, TelemetrySampler


def test_unsupported_field_is_na_and_the_rest_is_read(install_nvml):
    install_nvml([FakeGpu(errors={"nvmlDeviceGetUtilizationRates": NOT_SUPPORTED}), FakeGpu(util=70)])
    first, second = GpuProbe().sample()
    assert first.util_percent is None and first.mem_used_gib == 10.0 and first.mem_total_gib == 80.0
    assert second.util_percent == 70.0


def test_mig_gpu_lists_its_instances(install_nvml):
    mig = [FakeGpu(name="NVIDIA A100-SXM4-40GB MIG 3g.20gb", uuid=uuid_for(0xA, "MIG"), total_gib=19.5,
                   used_gib=3.0, processes=[(4242, 3 * GIB)]),
           None,  # an empty slot: NotFound
           FakeGpu(name="NVIDIA A100-SXM4-40GB MIG 2g.10gb", uuid=uuid_for(0xB, "MIG"), total_gib=9.5, used_gib=0.0)]
    nvml = install_nvml([FakeGpu(name="NVIDIA H100 80GB HBM3", mig_capable=True),
                         FakeGpu(name="NVIDIA A100-SXM4-40GB", mig_capable=True, mig=mig, total_gib=40)])
    h100, a100, slot0, slot2 = GpuProbe().sample()
    assert h100.mig_mode is False and h100.util_percent == 50.0 and h100.label == "GPU0"
    # MIG on: no utilisation counters, and the whole GPU's process list needs privileges
    assert a100.mig_mode is True and a100.util_percent is None and a100.processes is None
    assert a100.mem_total_gib == 40.0
    assert (slot0.label, slot0.index, slot0.mig, slot0.uuid) == ("GPU1:0", 1, 0, uuid_for(0xA, "MIG"))
    assert slot0.mem_used_gib == 3.0 and slot0.mem_total_gib == 19.5 and slot0.util_percent is None
    assert slot0.processes == (GpuProcess(4242, 3 * GIB),)
    assert slot2.label == "GPU1:2" and slot2.name.endswith("2g.10gb")
    assert ("nvmlDeviceGetMigDeviceHandleByIndex", "MainThread") in nvml.calls


def test_a_lost_gpu_is_listed_and_the_others_keep_being_read(install_nvml):
    gpus = [FakeGpu(util=10), FakeGpu(util=20), FakeGpu(util=30)]
    nvml = install_nvml(gpus)
    sampler = TelemetrySampler()
    assert [g.util_percent for g in sampler.sample().gpus] == [10.0, 20.0, 30.0]
    gpus[1].lost = True
    gpus[2].util = 33
    for _ in range(2):
        first, lost, third = sampler.sample().gpus
        assert first.util_percent == 10.0 and third.util_percent == 33.0
        assert lost.lost == "GPU is lost" and lost.mem_used_gib is None and lost.label == "GPU1"
    assert sampler.gpu_available and sampler.gpu_reason == ""
    # once lost, it is not asked again
    calls = [name for name, _ in nvml.calls]
    nvml.calls.clear()
    sampler.sample()
    assert len([name for name, _ in nvml.calls]) < len(calls)


def test_a_gpu_lost_before_the_first_reading(install_nvml):
    install_nvml([FakeGpu(lost=True), FakeGpu(util=5)])
    lost, fine = GpuProbe().sample()
    assert lost.lost == "GPU is lost" and fine.util_percent == 5.0


def test_one_field_failing_with_gpu_is_lost_marks_only_that_gpu(install_nvml):
    install_nvml([FakeGpu(errors={"nvmlDeviceGetUtilizationRates": GPU_IS_LOST}), FakeGpu()])
    lost, fine = GpuProbe().sample()
    assert lost.lost == "GPU is lost" and fine.mem_used_gib == 10.0


def test_memory_is_nvml_v2_used_and_v1_on_an_old_driver(install_nvml):
    install_nvml([FakeGpu(used_gib=10.0, reserved_gib=0.5)])
    assert GpuProbe().sample()[0].mem_used_gib == 10.0  # v2: reserved memory is not "used"


def test_v1_memory_when_the_driver_has_no_v2(install_nvml):
    nvml = install_nvml([FakeGpu(used_gib=10.0, reserved_gib=0.5)], driver_has_v2=False)
    probe = GpuProbe()
    assert probe.sample()[0].mem_used_gib == 10.5  # v1 counts what the driver reserved
    probe.sample()
    asked = [name for name, _ in nvml.calls if name == "nvmlDeviceGetMemoryInfo"]
    assert len(asked) == 3  # v2 (FunctionNotFound), v1, then v1 only


def test_process_memory_and_not_available(install_nvml):
    install_nvml([FakeGpu(processes=[(11, 2 * GIB), (12, None)]),
                  FakeGpu(errors={"nvmlDeviceGetComputeRunningProcesses": NO_PERMISSION,
                                  "nvmlDeviceGetGraphicsRunningProcesses": NO_PERMISSION})])
    first, second = GpuProbe().sample()
    assert first.processes == (GpuProcess(11, 2 * GIB), GpuProcess(12, None))
    assert second.processes is None


def test_init_failure_says_why(install_nvml):
    import pynvml

    install_nvml([], init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    probe = GpuProbe()
    assert probe.sample() == [] and probe.sample() == []
    assert probe.reason == f"{NO_GPU} (NVML: Driver Not Loaded)" and not probe.available


def test_no_gpus(install_nvml):
    install_nvml([])
    probe = GpuProbe()
    assert probe.reason.startswith("GPU: waiting")  # nothing asked of NVML yet
    assert probe.sample() == [] and probe.reason == NO_GPU


def test_a_bug_in_the_probe_leaves_the_sampler_running(install_nvml, monkeypatch):
    install_nvml([FakeGpu()])
    sampler = TelemetrySampler()

    def broken():
        raise OSError("libnvidia-ml.so.1: cannot read")

    monkeypatch.setattr(sampler.probe, "sample", broken)
    reading = sampler.sample()
    assert reading.gpus == () and "GPU telemetry failed: OSError" in sampler.gpu_reason


@pytest.mark.parametrize("field", ["nvmlDeviceGetName", "nvmlDeviceGetUUID"])
def test_unknown_name_or_uuid(install_nvml, field):
    install_nvml([FakeGpu(errors={field: NOT_SUPPORTED})])
    (gpu,) = GpuProbe().sample()
    assert gpu.mem_used_gib == 10.0 and (gpu.name == "?" or gpu.uuid is None)
