"""Random-number-generator state as JSON (python, numpy if present, torch, cuda).

Byte tensors are stored as base64 strings, so a checkpoint needs no pickle. numpy is not
needed for any of it: its generator is captured only when the process has numpy.
"""

from __future__ import annotations

import base64
import random
import sys
from typing import Any

import torch


def _b64(t: torch.Tensor) -> str:
    raw = bytes(t.detach().cpu().contiguous().view(torch.uint8).reshape(-1).tolist())
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str) -> torch.Tensor:
    raw = bytearray(base64.b64decode(text.encode("ascii"), validate=True))
    return torch.frombuffer(raw, dtype=torch.uint8).clone()


def _numpy():
    """numpy only if the process already uses it or can import it cheaply."""
    np = sys.modules.get("numpy")
    if np is not None:
        return np
    try:
        import numpy as np  # noqa: PLC0415
    except ImportError:
        return None
    return np


def capture_rng_state() -> dict[str, Any]:
    """Every generator's state as a JSON-safe dict."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss_next": gauss},
        "torch": _b64(torch.get_rng_state()),
    }
    np = _numpy()
    if np is not None:
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = {
            "kind": kind,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_b64(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Put back what `capture_rng_state` recorded (missing parts are left as they are).

    Raises ValueError / KeyError / TypeError on a malformed dict; the checkpoint loader
    validates with `check_rng_state` first.
    """
    py = state["python"]
    random.setstate((int(py["version"]), tuple(int(x) for x in py["state"]), py["gauss_next"]))
    torch.set_rng_state(_unb64(state["torch"]))
    np = _numpy()
    if np is not None and "numpy" in state:
        n = state["numpy"]
        keys = np.asarray(n["keys"], dtype=np.uint32)
        np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [_unb64(s) for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:  # a different GPU count: seed what exists from the first stream
            for i in range(torch.cuda.device_count()):
                torch.cuda.set_rng_state(cuda_states[min(i, len(cuda_states) - 1)], i)


def check_rng_state(state: Any) -> str | None:
    """Why `state` cannot be restored, or None when it looks complete."""
    if not isinstance(state, dict):
        return "rng state is not an object"
    for key in ("python", "torch"):
        if key not in state:
            return f"rng state lacks {key!r}"
    py = state["python"]
    if not isinstance(py, dict) or not isinstance(py.get("state"), list) or len(py["state"]) != 625:
        return "rng state 'python' is malformed"
    try:
        if _unb64(state["torch"]).numel() != torch.get_rng_state().numel():
            return "rng state 'torch' has the wrong size"
        for s in state.get("cuda", []):
            _unb64(s)
    except (ValueError, TypeError, AttributeError) as exc:
        return f"rng state is not valid base64 ({exc})"
    np_state = state.get("numpy")
    if np_state is not None and (not isinstance(np_state, dict) or len(np_state.get("keys", [])) != 624):
        return "rng state 'numpy' is malformed"
    return None
