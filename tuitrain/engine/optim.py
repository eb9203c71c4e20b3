"""`build_optimizer(model, args)`: HF's decay / no-decay groups and every `optim` family.

Torch families are built here; the ones from other packages live in `optim_families.py`
and are imported only when chosen.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import torch
from torch import nn

from tuitrain.engine.optim_families import EXTERNAL_FAMILIES, build_external
from tuitrain.errors import TuitrainError

TORCH_FAMILIES = ("adamw_torch", "adamw_torch_fused", "sgd", "adagrad", "rmsprop", "adafactor")
# transformers' get_decay_parameter_names: these names never get weight decay.
_NO_DECAY_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def _is_norm(module: nn.Module) -> bool:
    norm_types = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, getattr(nn, "RMSNorm", nn.LayerNorm))
    return isinstance(module, norm_types) or type(module).__name__.endswith("Norm")


def decay_parameter_names(model: nn.Module) -> set[str]:
    """Trainable parameter names that get weight decay: all but biases and norm weights."""
    skip_modules = {name for name, m in model.named_modules() if _is_norm(m)}
    names = set()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        owner = name.rsplit(".", 1)[0] if "." in name else ""
        if owner in skip_modules or any(re.search(pat, name.lower()) for pat in _NO_DECAY_PATTERNS):
            continue
        names.add(name)
    return names


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """`[decay group, no-decay group]` (empty groups dropped), trainable parameters only."""
    decay = decay_parameter_names(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_optim_args(text: str | None) -> dict[str, Any]:
    """HF's `optim_args` ("k=v,k=v", spaces ignored) with ints, floats, bools and None typed."""
    if not text:
        return {}
    out: dict[str, Any] = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TuitrainError(f"optimizer.optim_args: {item!r} is not key=value (e.g. \"momentum=0.9,nesterov=true\")")
        out[key] = _parse_value(value)
    return out


class AdamWNoBiasCorrection(torch.optim.Optimizer):
    """AdamW without the 1/(1-βᵗ) moment correction (`adam_bias_correction = false`).

    Per step: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    p ← p − lr·m / (√v + ε). State names match torch's AdamW.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.01, maximize: bool = False):
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "maximize": maximize})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = -p.grad if group["maximize"] else p.grad
                st = self.state[p]
                if not st:
                    st["step"] = torch.tensor(0.0)
                    st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                st["step"] += 1
                p.mul_(1 - lr * wd)
                st["exp_avg"].lerp_(g, 1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(g, g, value=1 - b2)
                p.addcdiv_(st["exp_avg"], st["exp_avg_sq"].sqrt().add_(eps), value=-lr)
        return loss


def _fused_ok(params: list[torch.Tensor]) -> bool:
    from torch.optim.optimizer import _get_fused_kernels_supported_devices  # noqa: PLC0415

    devices = _get_fused_kernels_supported_devices()
    return all(p.device.type in devices and p.is_floating_point() for p in params)


def _adafactor(groups, args, extra) -> torch.optim.Optimizer:
    """HF's Adafactor with the given lr (scale_parameter=False, relative_step=False)."""
    try:
        from transformers.optimization import Adafactor  # noqa: PLC0415
    except ImportError:
        Adafactor = None
    if Adafactor is not None:
        kw = {"scale_parameter": False, "relative_step": False, "warmup_init": False, **extra}
        return Adafactor(groups, lr=args.learning_rate, **kw)
    warnings.warn(
        "transformers is not installed: adafactor uses torch.optim.Adafactor, whose step size is "
        "scaled by the parameter RMS (HF's scale_parameter=True); pip install transformers for HF's",
        stacklevel=3,
    )
    return torch.optim.Adafactor(groups, lr=args.learning_rate, **extra)


def build_optimizer(model: nn.Module, args: Any) -> torch.optim.Optimizer:
    """The optimizer `args.optim` names, over HF's decay / no-decay parameter groups."""
    name = getattr(args, "optim", "adamw_torch")
    extra = parse_optim_args(getattr(args, "optim_args", None))
    groups = parameter_groups(model, float(args.weight_decay))
    if not groups:
        raise TuitrainError("the model has no trainable parameters")
    lr = args.learning_rate
    if name in EXTERNAL_FAMILIES:
        return build_external(name, groups, model, args, extra)
    if name not in TORCH_FAMILIES:
        raise TuitrainError(f"optimizer.optim: unknown optimizer {name!r} (choose one of {', '.join(TORCH_FAMILIES + tuple(EXTERNAL_FAMILIES))})")
    try:
        if name in ("adamw_torch", "adamw_torch_fused"):
            adam = {"lr": lr, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}
            if not getattr(args, "adam_bias_correction", True):
                if name == "adamw_torch_fused":
                    raise TuitrainError("optimizer.adam_bias_correction = false has no fused kernel: use optim = \"adamw_torch\"")
                return AdamWNoBiasCorrection(groups, **adam, **extra)
            if name == "adamw_torch_fused":
                params = [p for g in groups for p in g["params"]]
                if _fused_ok(params):
                    adam["fused"] = True
                else:
                    warnings.warn("adamw_torch_fused: no fused kernel for these parameters' device; using adamw_torch", stacklevel=2)
            return torch.optim.AdamW(groups, **adam, **extra)
        if name == "sgd":
            return torch.optim.SGD(groups, lr=lr, **extra)
        if name == "adagrad":
            return torch.optim.Adagrad(groups, lr=lr, **extra)
        if name == "rmsprop":
            return torch.optim.RMSprop(groups, lr=lr, **extra)
        return _adafactor(groups, args, extra)
    except TypeError as exc:  # an optim_args key the optimizer does not take
        raise TuitrainError(f"optimizer.optim_args: {name} refuses them ({exc})") from None
