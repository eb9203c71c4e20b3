"""What the trainer sets up around the task's model: activation checkpointing, HF's flos
rate, the compiled model's evaluation view, and the torch profiler of `profile = true`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable

import torch

from tuitrain.errors import TuitrainError


def flos_per_token(model) -> int:
    """HF's `floating_point_ops` rate: 6 × parameters without embeddings, for a model that
    counts them (`num_parameters`); 0 otherwise, as HF reports for other models."""
    count = getattr(model, "num_parameters", None)
    if not callable(count):
        return 0
    try:
        return 6 * int(count(exclude_embeddings=True))
    except TypeError:  # a num_parameters() without HF's keyword
        return 6 * int(count())


def enable_activation_checkpointing(model, kwargs: dict | None) -> None:
    """HF's order: `activation_checkpointing_enable` (transformers 5), else the older
    `gradient_checkpointing_enable` (tuitrain's built-in models take the kwargs dict)."""
    kw = dict(kwargs or {})
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs={k: v for k, v in kw.items() if k not in ("every_n_layers", "offload")}
               or None, every_n_layers=kw.get("every_n_layers", 1), offload=kw.get("offload", False))
        return
    enable = getattr(model, "gradient_checkpointing_enable", None)
    if enable is None:
        raise TuitrainError("precision.activation_checkpointing: this task's model does not support activation "
                            "checkpointing (set it to false)")
    enable(kw)


class DynamicBatch(torch.nn.Module):
    """A compiled model as evaluation calls it: the first dimension of every input tensor is
    marked dynamic, so the eval graph is compiled once for every batch size (the last, smaller
    batch included) instead of once for the full batches and again for the last one. Training
    calls the model itself: its batches are all full (`dataloader_drop_last`), its graph static."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):  # noqa: D102
        for value in (*args, *kwargs.values()):
            if torch.is_tensor(value) and value.dim():
                torch._dynamo.maybe_mark_dynamic(value, 0)
        return self.model(*args, **kwargs)


def profiler(enabled: bool, run_dir: Path, device: torch.device, step: Callable[[], int]):
    """The torch profiler over a few steps, writing Chrome traces to `RUN_DIR/profile/`; a
    no-op context (yielding None) when `profile` is off."""
    if not enabled:
        return contextlib.nullcontext()
    out = run_dir / "profile"
    out.mkdir(parents=True, exist_ok=True)

    def export(prof) -> None:
        prof.export_chrome_trace(str(out / f"trace-step{step()}.json"))

    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    return torch.profiler.profile(activities=activities, on_trace_ready=export,
                                  schedule=torch.profiler.schedule(wait=1, warmup=1, active=3, repeat=1))
