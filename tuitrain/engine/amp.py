"""The trainer's view of mixed precision, built on `precision.py`'s checks and helpers."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import torch

from . import precision


class Precision:
    """Autocast contexts for training and evaluation, and the fp16 grad scaler.

    `scaler` is an enabled `torch.amp.GradScaler` for fp16 training, None otherwise (so
    fp32 / bf16 steps pay nothing for it).
    """

    def __init__(self, args: SimpleNamespace, device: torch.device) -> None:
        self.device = device
        precision.check_backend(args, device)
        self.train_dtype = precision.compute_dtype(args, device)
        self.full_eval_dtype = precision.eval_dtype(args, device)
        precision.set_tf32(args.tf32)
        scaler = precision.make_grad_scaler(device, self.train_dtype)
        self.scaler = scaler if scaler.is_enabled() else None
        self._full = contextlib.nullcontext()  # fp32 training: one reusable no-op context

    def train_autocast(self):
        """Autocast for the forward pass in training (a null context in fp32)."""
        return self._full if self.train_dtype is None else precision.autocast(self.device, self.train_dtype)

    def eval_autocast(self):
        """Autocast for evaluation: the full-eval dtype when set, else the training dtype."""
        return precision.autocast(self.device, self.full_eval_dtype or self.train_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, scaled when fp16 uses a grad scaler."""
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Unscale gradients in place before clipping (fp16 only)."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def optimizer_step(self, optimizer: torch.optim.Optimizer) -> bool:
        """`optimizer.step()`, through the scaler (which skips inf/nan steps) when fp16; False
        when the scaler skipped it (HF then holds the LR schedule back too).

        A fused optimizer (`adamw_torch_fused`, the default) takes the scaler's inf flag on the
        device and skips the update inside its kernel: nothing is read back to the host, so an
        fp16 step does not wait for the GPU. Its step counts as taken, as accelerate counts it
        (the optimizer's `step()` was called), so HF's schedule moves on there too."""
        if self.scaler is None:
            optimizer.step()
            return True
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            self.scaler.step(optimizer)
            self.scaler.update()
            return True
        state = self.scaler._per_optimizer_states[id(optimizer)]
        if not state["found_inf_per_device"]:  # not unscaled yet (for clipping): unscaling finds the infs
            self.scaler.unscale_(optimizer)
        # The scaler reads these on the host inside step() anyway: no extra stall here.
        skipped = any(v.item() for v in state["found_inf_per_device"].values())
        self.scaler.step(optimizer)
        self.scaler.update()
        return not skipped
