"""Precision: dtype choice and refusals, autocast, grad scaler, tf32."""

from __future__ import annotations

import contextlib

import pytest
import torch

from tuitrain.config import TrainingArgs
from tuitrain.engine import precision
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)
CPU = torch.device("cpu")


def _args(**kw):
    return TrainingArgs(**kw)


def test_dtype_choice_on_cpu():
    assert precision.compute_dtype(_args(), CPU) is None
    assert precision.compute_dtype(_args(bf16=True), CPU) is torch.bfloat16
    with pytest.raises(TuitrainError, match="fp16"):
        precision.compute_dtype(_args(fp16=True), CPU)
    with pytest.raises(TuitrainError, match="choose one"):
        precision.compute_dtype(_args(fp16=True, bf16=True), CPU)
    assert precision.eval_dtype(_args(bf16_full_eval=True), CPU) is torch.bfloat16
    with pytest.raises(TuitrainError):
        precision.eval_dtype(_args(fp16_full_eval=True), CPU)


def test_bf16_refused_where_unsupported(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    with pytest.raises(TuitrainError, match="no bf16 support"):
        precision.compute_dtype(_args(bf16=True), torch.device("cuda"))


def test_autocast_runs_matmul_in_bf16_and_noop_for_fp32():
    a = torch.randn(2, 2)
    with precision.autocast(CPU, torch.bfloat16):
        assert (a @ a).dtype is torch.bfloat16
    with precision.autocast(CPU, None):
        assert (a @ a).dtype is torch.float32


def test_grad_scaler_only_for_fp16():
    assert not precision.make_grad_scaler(CPU, torch.bfloat16).is_enabled()
    assert not precision.make_grad_scaler(CPU, None).is_enabled()
    assert precision.make_grad_scaler(CPU, torch.float16).is_enabled()


def test_tf32_without_ampere_is_refused():
    precision.set_tf32(None)
    precision.set_tf32(False)
    if not torch.cuda.is_available():
        with pytest.raises(TuitrainError, match="TF32"):
            precision.set_tf32(True)


def test_apex_backend_is_refused_and_cpu_amp_only_on_cpu():
    for key in ("half_precision_backend", "fp16_backend"):
        with pytest.raises(TuitrainError, match=f"precision.{key}: apex AMP"):
            precision.check_backend(_args(**{key: "apex"}), CPU)
    precision.check_backend(_args(half_precision_backend="cpu_amp"), CPU)
    precision.check_backend(_args(half_precision_backend="auto", fp16_backend="auto"), torch.device("cuda", 0))
    with pytest.raises(TuitrainError, match="cpu_amp is CPU autocast"):
        precision.check_backend(_args(half_precision_backend="cpu_amp"), torch.device("cuda", 0))


@pytest.mark.parametrize("unscaled_for_clipping", [True, False])
def test_an_update_the_grad_scaler_skips_is_reported(unscaled_for_clipping):
    # fp16 (a GPU) skips an update whose gradients are not finite; the trainer then holds the
    # schedule back, as accelerate does for HF. The CPU scaler runs the same code.
    from tuitrain.engine.amp import Precision

    p = Precision(TrainingArgs(), CPU)
    p.scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.SGD([w], lr=0.1)
    for value, applied in ((float("inf"), False), (2.0, True)):
        opt.zero_grad()
        p.backward((w * value).sum())
        if unscaled_for_clipping:
            p.unscale(opt)
        before = w.detach().clone()
        assert p.optimizer_step(opt) is applied
        assert torch.equal(w.detach(), before) is not applied


@contextlib.contextmanager
def host_reads():
    """Counts the ways a tensor's value reaches Python (each a host sync on a GPU) while open."""
    counts = {"n": 0}
    names = ("item", "tolist", "__bool__", "__float__", "__int__")
    originals = {name: getattr(torch.Tensor, name) for name in names}

    def counting(original):
        def read(self, *args, **kwargs):
            counts["n"] += 1
            return original(self, *args, **kwargs)
        return read

    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        yield counts
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_a_fused_optimizer_skips_an_overflowing_fp16_step_without_reading_the_device():
    # adamw_torch_fused takes the scaler's inf flag on the device: the update is skipped inside
    # the kernel (weights and step count unchanged), nothing is read back, and the step counts
    # as taken (accelerate sees optimizer.step() called, so HF's schedule moves on).
    from tuitrain.engine.amp import Precision

    p = Precision(TrainingArgs(), CPU)
    p.scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    w = torch.nn.Parameter(torch.ones(2))
    opt = torch.optim.AdamW([w], lr=0.1, fused=True)
    for value, applied in ((float("inf"), False), (2.0, True)):
        opt.zero_grad()
        p.backward((w * value).sum())
        p.unscale(opt)
        before = w.detach().clone()
        with host_reads() as reads:
            assert p.optimizer_step(opt) is True
        assert reads["n"] == 0
        assert torch.equal(w.detach(), before) is not applied
        assert float(opt.state[w]["step"]) == (1.0 if applied else 0.0)


@pytest.mark.parametrize("optim", ["adamw_torch_fused", "adamw_torch"])
def test_fp16_steps_read_nothing_back_with_the_default_optimizer(tmp_path, monkeypatch, optim):
    # fp16's grad scaler with the default (fused) optimizer: between logging steps a training
    # step reads no tensor value on the host, so it never waits for the GPU. With the unfused
    # one the scaler reads its inf flag every step (and, on the CPU only, AdamW its step count).
    # The CPU's scaler runs the same code as CUDA's.
    from trainer_fixtures import regression_preset, run
    from tuitrain.engine import trainer as trainer_mod

    monkeypatch.setattr(precision, "make_grad_scaler", lambda device, dtype: torch.amp.GradScaler("cpu"))
    reads = []
    step = trainer_mod.Trainer._optimizer_step

    def counted(self, window):
        with host_reads() as n:
            step(self, window)
        reads.append(n["n"])

    monkeypatch.setattr(trainer_mod.Trainer, "_optimizer_step", counted)
    preset = regression_preset(max_steps=6, logging_steps=6, **({} if optim == "adamw_torch_fused" else {"optim": optim}))
    assert preset.args.optim == optim
    assert run(preset, tmp_path) == 0
    assert len(reads) == 6
    assert all(n == 0 for n in reads) if optim == "adamw_torch_fused" else all(n > 0 for n in reads)
