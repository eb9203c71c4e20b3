"""Mixed precision: dtype checks, autocast contexts, the fp16 grad scaler and TF32.

A precision the device cannot run (bf16 on a CPU/GPU without support, fp16 without a
GPU) is refused with a `TuitrainError` before training starts.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch

from tuitrain.errors import TuitrainError


def _bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return True  # torch's CPU autocast runs bf16 on every x86/ARM build it ships
    return device.type in ("xpu", "mps", "hpu", "npu")


def check_backend(args: Any, device: torch.device) -> None:
    """Refuse a half-precision backend the engine does not run (it always uses torch.amp)."""
    # fp16_backend is the old name of half_precision_backend
    for key, backend in (("half_precision_backend", args.half_precision_backend), ("fp16_backend", args.fp16_backend)):
        if backend == "apex":
            raise TuitrainError(f'precision.{key}: apex AMP is not run by tuitrain\'s engine (NVIDIA '
                                'deprecated it); use "auto": torch.amp\'s fp16/bf16 with a grad scaler')
        if backend == "cpu_amp" and device.type != "cpu":
            raise TuitrainError(f"precision.{key}: cpu_amp is CPU autocast but this run trains on "
                                f'{device.type}; use "auto", or set use_cpu = true')


def compute_dtype(args: Any, device: torch.device) -> torch.dtype | None:
    """The autocast dtype training uses (None = full fp32); refuses what `device` lacks."""
    fp16, bf16 = bool(args.fp16), bool(args.bf16)
    if fp16 and bf16:
        raise TuitrainError("precision: fp16 and bf16 are both set; choose one")
    if bf16:
        if not _bf16_supported(device):
            raise TuitrainError(f"precision.bf16: this {device.type} device has no bf16 support (use fp16 on older GPUs, or neither)")
        return torch.bfloat16
    if fp16:
        if device.type == "cpu":
            raise TuitrainError("precision.fp16: fp16 mixed precision needs a GPU; use bf16 on CPU or turn it off")
        return torch.float16
    return None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """An autocast context for `dtype`, or a no-op context for full precision."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def eval_dtype(args: Any, device: torch.device) -> torch.dtype | None:
    """The dtype for fp16_full_eval / bf16_full_eval (the model is cast, not autocast)."""
    if args.bf16_full_eval:
        if not _bf16_supported(device):
            raise TuitrainError(f"precision.bf16_full_eval: this {device.type} device has no bf16 support")
        return torch.bfloat16
    if args.fp16_full_eval:
        if device.type == "cpu":
            raise TuitrainError("precision.fp16_full_eval: needs a GPU")
        return torch.float16
    return None


def make_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """A GradScaler, enabled only for fp16 (bf16 and fp32 need none)."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def set_tf32(enabled: bool | None) -> None:
    """Apply `tf32` (None leaves torch's default); True without an Ampere+ GPU is refused."""
    if enabled is None:
        return
    if enabled and torch.cuda.is_available():
        major, _ = torch.cuda.get_device_capability()
        if major < 8:
            raise TuitrainError("precision.tf32: TF32 needs an Ampere or newer GPU (compute capability ≥ 8.0)")
    elif enabled:
        raise TuitrainError("precision.tf32: TF32 needs an NVIDIA Ampere or newer GPU; this machine has none")
    torch.backends.cuda.matmul.allow_tf32 = bool(enabled)
    torch.backends.cudnn.allow_tf32 = bool(enabled)
