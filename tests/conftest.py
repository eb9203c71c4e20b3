"""Suite-wide: every test starts with NVML not yet initialised in this process.

`tuitrain.telemetry.nvml.SESSION` initialises NVML once per process; a test that swaps in
a fake `pynvml` (or none) must not see what an earlier test's session found.
"""

from __future__ import annotations

import pytest

from tuitrain.telemetry.nvml import SESSION


@pytest.fixture(autouse=True)
def fresh_nvml_session():
    SESSION.reset()
    yield
    SESSION.reset()
