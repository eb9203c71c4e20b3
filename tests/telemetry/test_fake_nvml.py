"""The fake pynvml used by the telemetry tests speaks the installed nvidia-ml-py's API."""

from __future__ import annotations

import inspect

import pynvml
import pytest

from fake_nvml import NOT_SUPPORTED, FakeGpu, fake_pynvml


def test_fake_matches_real_bindings():
    fake = fake_pynvml([FakeGpu()])
    assert fake.FAKED, "the fake implements no function"
    for name in fake.FAKED:
        real = getattr(pynvml, name, None)
        assert callable(real), f"pynvml has no {name}"
        assert list(inspect.signature(getattr(fake, name)).parameters) == list(inspect.signature(real).parameters), name


def test_fake_raises_the_real_error_classes():
    fake = fake_pynvml([FakeGpu(errors={"nvmlDeviceGetUtilizationRates": NOT_SUPPORTED})])
    fake.nvmlInit()
    handle = fake.nvmlDeviceGetHandleByIndex(0)
    with pytest.raises(pynvml.NVMLError_NotSupported) as info:
        fake.nvmlDeviceGetUtilizationRates(handle)
    assert str(info.value) == "Not Supported"
    assert isinstance(fake.nvmlDeviceGetMemoryInfo(handle, version=pynvml.nvmlMemory_v2), pynvml.c_nvmlMemory_v2_t)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        fake.nvmlDeviceGetHandleByIndex(3)
    fake.nvmlShutdown()
    with pytest.raises(pynvml.NVMLError_Uninitialized):
        fake.nvmlDeviceGetCount()
