"""Process-wide setup before a model is built: seeds and full determinism."""

from __future__ import annotations

import os
import random

import torch


def set_seed(seed: int, full_determinism: bool = False) -> None:
    """Seed python, numpy (when present), torch and CUDA; with `full_determinism` also make
    torch use deterministic kernels (HF's `enable_full_determinism`)."""
    if full_determinism:
        os.environ["CUDA_LAUNCH_BLOCKING"] = "1"
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    random.seed(seed)
    try:
        import numpy as np  # noqa: PLC0415 - optional
        np.random.seed(seed % 2**32)
    except ImportError:
        pass
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
