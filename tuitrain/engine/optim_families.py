"""The optimizer families that live in other packages, imported only when chosen.

`EXTERNAL_FAMILIES` maps each `optim` value to `(import name, pip requirement)`;
`build_external(name, groups, model, args, extra)` constructs the optimizer the way
transformers' `Trainer.get_optimizer_cls_and_kwargs` does. A missing package raises
`TuitrainError` naming it and its `pip install` command.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

import torch

from tuitrain.errors import TuitrainError

_BNB = ("bitsandbytes", "bitsandbytes>=0.41.1")
_BNB44 = ("bitsandbytes", "bitsandbytes>=0.44.0")
EXTERNAL_FAMILIES: dict[str, tuple[str, str]] = {
    "adamw_torch_xla": ("torch_xla", "torch_xla"),
    "adamw_torch_npu_fused": ("torch_npu", "torch_npu"),
    "adamw_apex_fused": ("apex", "apex (https://github.com/NVIDIA/apex)"),
    "adamw_anyprecision": ("torchdistx", "torchdistx"),
    "adamw_torch_4bit": ("torchao", "torchao>=0.4.0"),
    "adamw_torch_8bit": ("torchao", "torchao>=0.4.0"),
    **{n: _BNB for n in (
        "adamw_bnb_8bit", "adamw_8bit", "paged_adamw_32bit", "paged_adamw_8bit",
        "lion_32bit", "lion_8bit", "paged_lion_32bit", "paged_lion_8bit",
        "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit")},
    **{n: _BNB44 for n in ("ademamix", "ademamix_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit")},
    "schedule_free_adamw": ("schedulefree", "schedulefree>=1.2.6"),
    "schedule_free_radam": ("schedulefree", "schedulefree>=1.4.0"),
    "schedule_free_sgd": ("schedulefree", "schedulefree>=1.2.6"),
    **{n: ("galore_torch", "galore-torch") for n in (
        "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
        "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise")},
    "apollo_adamw": ("apollo_torch", "apollo-torch"),
    "apollo_adamw_layerwise": ("apollo_torch", "apollo-torch"),
    "lomo": ("lomo_optim", "lomo-optim"),
    "adalomo": ("lomo_optim", "lomo-optim"),
    "grokadamw": ("grokadamw", "grokadamw"),
    "stable_adamw": ("optimi", "torch-optimi"),
}
LOW_RANK = tuple(n for n in EXTERNAL_FAMILIES if n.startswith(("galore_", "apollo_")))


def require(name: str) -> Any:
    """Import the package behind family `name`, or raise a TuitrainError saying how to get it."""
    module, pip = EXTERNAL_FAMILIES[name]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise TuitrainError(f'optim "{name}" needs {pip}: pip install \'{pip}\'') from None


def _adam_kwargs(args: Any) -> dict[str, Any]:
    return {"betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}


def target_linear_names(model: torch.nn.Module, patterns: Any) -> list[str]:
    """Names of `nn.Linear` modules matching `optim_target_modules` (regex string or list)."""
    if not patterns:
        raise TuitrainError("optimizer.optim_target_modules: low-rank optimizers need the nn.Linear modules to target (e.g. [\"attn\", \"mlp\"])")
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if any(p == "all-linear" or re.fullmatch(p, name) or p in name for p in pats):
            names.append(name)
    if not names:
        raise TuitrainError(f"optimizer.optim_target_modules: {pats} matches no nn.Linear module of the model")
    return names


def _low_rank_groups(model, groups, args, extra, defaults) -> list[dict[str, Any]]:
    targets = set(target_linear_names(model, getattr(args, "optim_target_modules", None)))
    target_params = {id(m.weight) for n, m in model.named_modules() if n in targets}
    opts = {k: extra.pop(k, v) for k, v in defaults.items()}
    out = []
    for g in groups:
        plain = [p for p in g["params"] if id(p) not in target_params]
        lowrank = [p for p in g["params"] if id(p) in target_params]
        if plain:
            out.append({**g, "params": plain})
        if lowrank:
            out.append({**g, "params": lowrank, **opts})
    return out


class LayerwiseOptimizer(torch.optim.Optimizer):
    """One inner optimizer per parameter, stepped from its post-accumulate-grad hook.

    This is transformers' layerwise mode: gradients are freed as soon as each parameter is
    updated, so `step()`/`zero_grad()` on this object do nothing, and gradient accumulation
    is not possible.
    """

    def __init__(self, groups: list[dict[str, Any]], make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer]):
        self.inner: dict[torch.Tensor, torch.optim.Optimizer] = {}
        for g in groups:
            for p in g["params"]:
                self.inner[p] = make([{**g, "params": [p]}])
        super().__init__(groups, {"lr": groups[0].get("lr", 0.0)})
        for p, opt in self.inner.items():
            def hook(param, opt=opt):
                if param.grad is not None:
                    opt.step()
                    opt.zero_grad(set_to_none=True)
            p.register_post_accumulate_grad_hook(hook)

    def step(self, closure=None):  # noqa: D102 - updates happen in the hooks
        for g in self.param_groups:  # a scheduler changes lr here: hand it on
            for p in g["params"]:
                for ig in self.inner[p].param_groups:
                    ig["lr"] = g["lr"]
        return None

    def zero_grad(self, set_to_none: bool = True) -> None:  # noqa: D102
        return None


def build_external(name: str, groups: list[dict[str, Any]], model: torch.nn.Module, args: Any, extra: dict[str, Any]) -> torch.optim.Optimizer:
    """Construct the optimizer of an external family `name` (its package must import)."""
    pkg = require(name)
    lr = args.learning_rate
    if name in ("adamw_bnb_8bit", "adamw_8bit", "paged_adamw_32bit", "paged_adamw_8bit",
                "lion_32bit", "lion_8bit", "paged_lion_32bit", "paged_lion_8bit",
                "ademamix", "ademamix_8bit", "paged_ademamix_32bit", "paged_ademamix_8bit",
                "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit"):
        bnb = importlib.import_module("bitsandbytes.optim")
        bits = 8 if "8bit" in name else 32
        paged = name.startswith("paged_")
        kw: dict[str, Any] = {"lr": lr, "optim_bits": bits, "is_paged": paged}
        if "lion" in name:
            cls = bnb.Lion
            kw["betas"] = (args.adam_beta1, args.adam_beta2)
        elif "ademamix" in name:
            cls = bnb.AdEMAMix
            kw.update(betas=(args.adam_beta1, args.adam_beta2, float(extra.pop("beta3", 0.9999))),
                      alpha=float(extra.pop("alpha", 5.0)), t_alpha=extra.pop("t_alpha", None),
                      t_beta3=extra.pop("t_beta3", None), eps=args.adam_epsilon)
        elif "rmsprop" in name:
            cls = bnb.RMSprop
        else:
            cls = bnb.AdamW
            kw.update(_adam_kwargs(args))
        return cls(groups, **kw, **extra)
    if name in ("adamw_torch_4bit", "adamw_torch_8bit"):
        try:
            mod = importlib.import_module("torchao.optim")
        except ImportError:
            mod = importlib.import_module("torchao.prototype.low_bit_optim")
        cls = mod.AdamW4bit if name.endswith("4bit") else mod.AdamW8bit
        return cls(groups, lr=lr, **_adam_kwargs(args), **extra)
    if name.startswith("schedule_free_"):
        cls = {"adamw": pkg.AdamWScheduleFree, "radam": getattr(pkg, "RAdamScheduleFree", None),
               "sgd": pkg.SGDScheduleFree}[name.rsplit("_", 1)[1]]
        if cls is None:
            raise TuitrainError(f'optim "{name}" needs schedulefree>=1.4.0: pip install \'schedulefree>=1.4.0\'')
        kw = {"lr": lr, "warmup_steps": int(getattr(args, "warmup_steps", 0) or 0)}
        if not name.endswith("sgd"):
            kw.update(_adam_kwargs(args))
        return cls(groups, **kw, **extra)
    if name.startswith(("galore_", "apollo_")):
        if name.startswith("galore_"):
            defaults = {"rank": 128, "update_proj_gap": 200, "scale": 0.25, "proj_type": "std"}
            base = name.replace("_layerwise", "")
            cls = {"galore_adamw": pkg.GaLoreAdamW, "galore_adamw_8bit": pkg.GaLoreAdamW8bit,
                   "galore_adafactor": pkg.GaLoreAdafactor}[base]
        else:
            defaults = {"rank": 128, "proj": "random", "scale_type": "channel", "update_proj_gap": 200,
                        "scale": 1.0, "proj_type": "std"}
            cls = pkg.APOLLOAdamW
        low = _low_rank_groups(model, groups, args, extra, defaults)
        kw = {"lr": lr, **(_adam_kwargs(args) if "adafactor" not in name else {"relative_step": False, "scale_parameter": False, "warmup_init": False}), **extra}
        if name.endswith("_layerwise"):
            if int(getattr(args, "gradient_accumulation_steps", 1) or 1) != 1:
                raise TuitrainError(f"optimizer.optim: {name} updates layer by layer and forbids gradient accumulation (set core.gradient_accumulation_steps = 1)")
            return LayerwiseOptimizer(low, lambda g: cls(g, **kw))
        return cls(low, **kw)
    if name in ("lomo", "adalomo"):
        cls = pkg.Lomo if name == "lomo" else pkg.AdaLomo
        return cls(model, lr=lr, **extra)
    if name == "grokadamw":
        return pkg.GrokAdamW(groups, lr=lr, **_adam_kwargs(args), **extra)
    if name == "stable_adamw":
        return pkg.StableAdamW(groups, lr=lr, **_adam_kwargs(args), **extra)
    if name == "adamw_anyprecision":
        cls = importlib.import_module("torchdistx.optimizers").AnyPrecisionAdamW
        kw = {"use_kahan_summation": bool(extra.pop("use_kahan_summation", False))}
        for key, default in (("momentum_dtype", "float32"), ("variance_dtype", "float32"), ("compensation_buffer_dtype", "bfloat16")):
            kw[key] = getattr(torch, str(extra.pop(key, default)))
        return cls(groups, lr=lr, **_adam_kwargs(args), **kw, **extra)
    if name == "adamw_apex_fused":
        return importlib.import_module("apex.optimizers").FusedAdam(groups, lr=lr, **_adam_kwargs(args), **extra)
    if name == "adamw_torch_xla":
        return importlib.import_module("torch_xla.amp.syncfree").AdamW(groups, lr=lr, **_adam_kwargs(args), **extra)
    if name == "adamw_torch_npu_fused":
        return importlib.import_module("torch_npu.optim").NpuFusedAdamW(groups, lr=lr, **_adam_kwargs(args), **extra)
    raise TuitrainError(f"optimizer.optim: unknown optimizer {name!r}")
