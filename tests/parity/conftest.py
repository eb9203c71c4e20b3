"""The parity suite runs tuitrain's engine and `transformers.Trainer` side by side (CPU, one thread)."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the parity suite needs the test extras (transformers)")
transformers.logging.set_verbosity_error()
torch.set_num_threads(1)
