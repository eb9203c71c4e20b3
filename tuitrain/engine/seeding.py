"""Process-wide setup before a model is built: seeds and full determinism."""

from __future__ import annotations

import os
import random
import warnings

import torch

# What `full_determinism` needs from CUDA's environment. The CUDA runtime reads these when it
# starts (the first `torch.cuda` query), so they are set before that: `determinism_env`.
DETERMINISM_ENV = {"CUDA_LAUNCH_BLOCKING": "1", "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}


def determinism_env(full_determinism: bool) -> None:
    """Set `DETERMINISM_ENV` for `full_determinism` (HF's `enable_full_determinism`), before
    CUDA starts: the trainer calls this before its first CUDA query. Where CUDA already runs
    in this process (a trainer built after other CUDA work), a warning says they come too late."""
    if not full_determinism:
        return
    late = [k for k, v in DETERMINISM_ENV.items() if os.environ.get(k) != v] if torch.cuda.is_initialized() else []
    os.environ.update(DETERMINISM_ENV)
    if late:
        warnings.warn(f"full_determinism: CUDA started in this process before {', '.join(late)} was set; "
                      "launch the trainer with them in its environment", stacklevel=2)


def set_seed(seed: int, full_determinism: bool = False) -> None:
    """Seed python, numpy (when present), torch and CUDA; with `full_determinism` also make
    torch use deterministic kernels (HF's `enable_full_determinism`; see `determinism_env`)."""
    if full_determinism:
        determinism_env(True)
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
