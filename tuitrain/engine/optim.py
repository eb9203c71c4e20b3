"""`build_optimizer(model, args)`: transformers' decay / no-decay groups and every `optim` family.

`BUILDERS` maps each `optim` value to the function that constructs it, the way
transformers' `Trainer.get_optimizer_cls_and_kwargs` does (same classes, same keyword
arguments, `optim_args` read only by the families that read them, each key cast as HF
casts it). Its keys are exactly `config.optimizers.OPTIMIZERS`, the table that gives the
schema its choices and the validator its packages. Families from other packages live in
`optim_families.py` and are imported only when chosen.
"""

from __future__ import annotations

import re
import warnings
from typing import Any, Callable

import torch
from torch import nn

from tuitrain.config.optimizers import OPTIMIZERS
from tuitrain.engine.optim_families import EXTERNAL_BUILDERS, require
from tuitrain.errors import TuitrainError

# transformers' get_decay_parameter_names: parameters of an nn.LayerNorm, and these names
# (lower-cased), never get weight decay.
_NO_DECAY_PATTERNS = [re.compile(p) for p in (r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)",
                                              r"_norm(?:$|\.)")]


def _names(module: nn.Module) -> list[str]:
    """transformers' `get_parameter_names(module, [nn.LayerNorm], patterns)`, line for line."""
    out: list[str] = []
    for name, child in module.named_children():
        out += [f"{name}.{n}" for n in _names(child)
                if not isinstance(child, nn.LayerNorm)
                and not any(p.search(f"{name}.{n}".lower()) for p in _NO_DECAY_PATTERNS)]
    out += [k for k in module._parameters if not any(p.search(k.lower()) for p in _NO_DECAY_PATTERNS)]
    return out


def decay_parameter_names(model: nn.Module) -> set[str]:
    """Parameter names that get weight decay: all but those of nn.LayerNorm modules and the
    names that say bias or norm (exactly transformers' rule)."""
    return set(_names(model))


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """`[decay group, no-decay group]` of trainable parameters, as transformers builds them
    (an empty group is kept, as HF keeps it, so group indices stay stable)."""
    decay = decay_parameter_names(model)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for n, p in named if n in decay], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n not in decay], "weight_decay": 0.0},
    ]


def parse_optim_args(text: str | None) -> dict[str, str]:
    """HF's `optim_args` ("k=v,k=v", spaces ignored) as strings; each family casts what it reads."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise TuitrainError(f"optimizer.optim_args: {item!r} is not key=value (e.g. \"momentum=0.9,nesterov=true\")")
        out[key] = value
    return out


def _flag(text: str) -> bool:
    return text.lower() in ("true", "1", "yes")


def _read(optim_args: dict[str, str], casts: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The keys `casts` names, cast as transformers casts them; other keys are not read."""
    try:
        return {k: cast(optim_args[k]) for k, cast in casts.items() if k in optim_args}
    except ValueError as exc:
        raise TuitrainError(f"optimizer.optim_args: {exc}") from None


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


def adam_kwargs(args: Any) -> dict[str, Any]:
    """`lr`, `betas` and `eps` from the arguments, as HF's `adam_kwargs`."""
    return {"lr": args.learning_rate, "betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}


def _adamw(groups, model, args, optim_args) -> torch.optim.Optimizer:
    kw = adam_kwargs(args)
    fused = args.optim == "adamw_torch_fused"
    if not args.adam_bias_correction:
        if fused:
            raise TuitrainError("optimizer.adam_bias_correction = false has no fused kernel: use optim = \"adamw_torch\"")
        return AdamWNoBiasCorrection(groups, **kw)
    if fused:
        if _fused_ok([p for g in groups for p in g["params"]]):
            kw["fused"] = True
        else:
            warnings.warn("adamw_torch_fused: no fused kernel for these parameters' device; using adamw_torch", stacklevel=2)
    return torch.optim.AdamW(groups, **kw)


def _adafactor(groups, model, args, optim_args) -> torch.optim.Optimizer:
    Adafactor = require("adafactor").optimization.Adafactor
    return Adafactor(groups, lr=args.learning_rate, scale_parameter=False, relative_step=False)


def _sgd(groups, model, args, optim_args) -> torch.optim.Optimizer:
    kw = _read(optim_args, {"momentum": float, "dampening": float, "weight_decay": float, "nesterov": _flag})
    return torch.optim.SGD(groups, lr=args.learning_rate, **kw)


def _adagrad(groups, model, args, optim_args) -> torch.optim.Optimizer:
    kw = _read(optim_args, {"lr_decay": float, "weight_decay": float, "eps": float})
    return torch.optim.Adagrad(groups, lr=args.learning_rate, **kw)


def _rmsprop(groups, model, args, optim_args) -> torch.optim.Optimizer:
    kw = _read(optim_args, {"momentum": float, "alpha": float, "eps": float, "weight_decay": float,
                            "centered": _flag})
    return torch.optim.RMSprop(groups, lr=args.learning_rate, **kw)


Builder = Callable[[list, nn.Module, Any, dict], torch.optim.Optimizer]
BUILDERS: dict[str, Builder] = {
    "adamw_torch": _adamw, "adamw_torch_fused": _adamw, "adafactor": _adafactor,
    "sgd": _sgd, "adagrad": _adagrad, "rmsprop": _rmsprop,
    **EXTERNAL_BUILDERS,
}


def build_optimizer(model: nn.Module, args: Any) -> torch.optim.Optimizer:
    """The optimizer `args.optim` names, over HF's decay / no-decay parameter groups."""
    name = args.optim
    build = BUILDERS.get(name)
    if build is None or name not in OPTIMIZERS:
        raise TuitrainError(f"optimizer.optim: unknown optimizer {name!r} (choose one of {', '.join(OPTIMIZERS)})")
    groups = parameter_groups(model, float(args.weight_decay))
    if not any(g["params"] for g in groups):
        raise TuitrainError("the model has no trainable parameters")
    if not args.weight_decay:  # both groups alike: one, for the same update in one optimizer call
        groups = [{"params": [p for g in groups for p in g["params"]], "weight_decay": 0.0}]
    try:
        return build(groups, model, args, parse_optim_args(args.optim_args))
    except TypeError as exc:  # an optim_args key the optimizer does not take
        raise TuitrainError(f"optimizer.optim_args: {name} refuses them ({exc})") from None
