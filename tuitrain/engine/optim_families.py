"""The optimizer families that live in other packages, imported only when chosen.

`EXTERNAL_BUILDERS` maps each such `optim` value to a function `(groups, model, args,
optim_args) -> Optimizer` that constructs it the way transformers' optimizer handlers do
(`transformers/trainer_optimizer.py`): the same class, the same keyword arguments, and
`optim_args` (strings) read and cast only where HF reads them. `require(name)` imports the
family's package or raises `TuitrainError` naming it and its `pip install` command, from
the table in `config/optimizers.py`.
"""

from __future__ import annotations

import importlib
import re
from typing import Any, Callable

import torch

from tuitrain.config.optimizers import OPTIMIZERS
from tuitrain.errors import TuitrainError


def require(name: str) -> Any:
    """Import the packages behind family `name` (returns the first), or raise a TuitrainError
    saying how to get them."""
    info = OPTIMIZERS[name]
    modules = []
    for module in info.imports:
        try:
            modules.append(importlib.import_module(module))
        except ImportError:
            raise TuitrainError(f'optim "{name}" needs {info.pip}: pip install \'{info.pip}\'') from None
    return modules[0] if modules else None


def _adam(args: Any) -> dict[str, Any]:
    return {"betas": (args.adam_beta1, args.adam_beta2), "eps": args.adam_epsilon}


def _flag(text: str) -> bool:
    return str(text).lower() in ("true", "1", "yes", "y", "on", "t")


def target_linear_names(model: torch.nn.Module, patterns: Any) -> list[str]:
    """Names of `nn.Linear` modules matching `optim_target_modules` (regex string or list)."""
    if not patterns:
        raise TuitrainError("optimizer.optim_target_modules: low-rank optimizers need the nn.Linear modules to target (e.g. [\"attn\", \"mlp\"])")
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    names = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        if any(p.replace("_", "-") == "all-linear" or re.fullmatch(p, name) or p in name for p in pats):
            names.append(name)
    if not names:
        raise TuitrainError(f"optimizer.optim_target_modules: {pats} matches no nn.Linear module of the model")
    return names


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


def _bnb(groups, model, args, optim_args):
    require(args.optim)
    bnb = importlib.import_module("bitsandbytes.optim")
    name = args.optim
    kw: dict[str, Any] = {"lr": args.learning_rate, "optim_bits": 8 if "8bit" in name else 32}
    if "rmsprop" not in name:
        kw["is_paged"] = "paged" in name
    if "adam" in name and "ademamix" not in name:
        cls = bnb.AdamW
        kw.update(_adam(args))
    elif "lion" in name:
        cls = bnb.Lion
        kw["betas"] = (args.adam_beta1, args.adam_beta2)
    elif "rmsprop" in name:
        cls = bnb.RMSprop
        kw.update(optim_args)  # HF hands every key over, as given
    else:
        cls = bnb.AdEMAMix
        kw.update(betas=(float(optim_args.get("beta1", args.adam_beta1)), float(optim_args.get("beta2", args.adam_beta2)),
                         float(optim_args.get("beta3", 0.9999))),
                  alpha=float(optim_args.get("alpha", 5.0)), eps=float(optim_args.get("eps", args.adam_epsilon)))
        for key in ("t_alpha", "t_beta3"):
            if key in optim_args:
                kw[key] = int(optim_args[key])
    return cls(groups, **kw)


def _torchao(groups, model, args, optim_args):
    require(args.optim)
    try:
        mod = importlib.import_module("torchao.optim")
    except ImportError:
        mod = importlib.import_module("torchao.prototype.low_bit_optim")
    cls = mod.AdamW4bit if args.optim.endswith("4bit") else mod.AdamW8bit
    return cls(groups, lr=args.learning_rate, block_size=optim_args.get("block_size", 256),
               bf16_stochastic_round=_flag(optim_args.get("bf16_stochastic_round", "False")), **_adam(args))


def _schedule_free(groups, model, args, optim_args):
    pkg = require(args.optim)
    kind = args.optim.rsplit("_", 1)[1]
    cls = {"adamw": pkg.AdamWScheduleFree, "radam": getattr(pkg, "RAdamScheduleFree", None),
           "sgd": pkg.SGDScheduleFree}[kind]
    if cls is None:
        raise TuitrainError(f'optim "{args.optim}" needs schedulefree>=1.4.0: pip install \'schedulefree>=1.4.0\'')
    kw: dict[str, Any] = {"lr": args.learning_rate, "weight_decay": args.weight_decay,
                          "weight_lr_power": float(optim_args.get("weight_lr_power", 2.0)),
                          "r": float(optim_args.get("r", 0.0))}
    if kind != "sgd":
        kw.update(_adam(args))
    if kind != "radam":
        kw["warmup_steps"] = args.warmup_steps
    return cls(groups, **kw)


def _low_rank(groups, model, args, optim_args):
    """GaLore / APOLLO over the targeted nn.Linear weights (HF's `_setup_low_rank_optimizer`)."""
    pkg = require(args.optim)
    name, base = args.optim, args.optim.replace("_layerwise", "")
    if name.startswith("galore_"):
        cls = {"galore_adamw": pkg.GaLoreAdamW, "galore_adamw_8bit": pkg.GaLoreAdamW8bit,
               "galore_adafactor": pkg.GaLoreAdafactor}[base]
        opts: dict[str, Any] = {"rank": int(optim_args.get("rank", 128)),
                                "update_proj_gap": int(optim_args.get("update_proj_gap", 200)),
                                "scale": float(optim_args.get("scale", 0.25)),
                                "proj_type": optim_args.get("proj_type", "std")}
    else:
        cls = pkg.APOLLOAdamW
        opts = {"rank": int(optim_args.get("rank", 128)), "proj": optim_args.get("proj", "random"),
                "scale_type": optim_args.get("scale_type", "channel"),
                "update_proj_gap": int(optim_args.get("update_proj_gap", 200)),
                "scale": float(optim_args.get("scale", 1.0)), "proj_type": optim_args.get("proj_type", "std"),
                **_adam(args)}
    targets = {f"{n}.weight" for n in target_linear_names(model, args.optim_target_modules)}
    named = list(model.named_parameters())
    low = [{"params": [p for n, p in named if n not in targets]},
           {"params": [p for n, p in named if n in targets], **opts}]
    kw: dict[str, Any] = {"lr": args.learning_rate}
    if name.startswith("galore_adafactor"):
        kw.update(scale_parameter=False, relative_step=False)
    if name.endswith("_layerwise"):
        if args.gradient_accumulation_steps != 1:
            raise TuitrainError(f"optimizer.optim: {name} updates layer by layer and forbids gradient accumulation (set core.gradient_accumulation_steps = 1)")
        return LayerwiseOptimizer(low, lambda g: cls(g, **kw))
    return cls(low, **kw)


def _lomo(groups, model, args, optim_args):
    pkg = require(args.optim)
    cls = pkg.AdaLomo if args.optim == "adalomo" else pkg.Lomo
    return cls(model, lr=args.learning_rate)


def _grokadamw(groups, model, args, optim_args):
    pkg = require(args.optim)
    defaults = {"alpha_init": 0.98, "lamb": 2.0, "gamma": 0.1, "grokking_signal_decay_rate": 0.1,
                "gradient_clipping": 1.0}
    return pkg.GrokAdamW(groups, lr=args.learning_rate,
                         **{k: float(optim_args.get(k, v)) for k, v in defaults.items()})


def _stable_adamw(groups, model, args, optim_args):
    pkg = require(args.optim)
    max_lr = optim_args.get("max_lr")
    kahan = optim_args.get("kahan_sum")
    return pkg.StableAdamW(groups, lr=args.learning_rate, weight_decay=args.weight_decay, **_adam(args),
                           decouple_lr=bool(optim_args.get("decouple_lr", False)),
                           max_lr=float(max_lr) if max_lr is not None else None,
                           kahan_sum=bool(kahan) if kahan is not None else None)


def _anyprecision(groups, model, args, optim_args):
    require(args.optim)
    cls = importlib.import_module("torchdistx.optimizers").AnyPrecisionAdamW
    dtypes = {key: getattr(torch, optim_args.get(key, default)) for key, default in (
        ("momentum_dtype", "float32"), ("variance_dtype", "float32"), ("compensation_buffer_dtype", "bfloat16"))}
    return cls(groups, lr=args.learning_rate, **_adam(args),
               use_kahan_summation=_flag(optim_args.get("use_kahan_summation", "False")), **dtypes)


def _vendor_adamw(module: str, cls_name: str):
    def build(groups, model, args, optim_args):
        require(args.optim)
        return getattr(importlib.import_module(module), cls_name)(groups, lr=args.learning_rate, **_adam(args))
    return build


EXTERNAL_BUILDERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw_torch_xla": _vendor_adamw("torch_xla.amp.syncfree", "AdamW"),
    "adamw_torch_npu_fused": _vendor_adamw("torch_npu.optim", "NpuFusedAdamW"),
    "adamw_apex_fused": _vendor_adamw("apex.optimizers", "FusedAdam"),
    "adamw_anyprecision": _anyprecision,
    "adamw_torch_4bit": _torchao, "adamw_torch_8bit": _torchao,
    **{n: _bnb for n in OPTIMIZERS if OPTIMIZERS[n].imports == ("bitsandbytes",)},
    **{n: _schedule_free for n in OPTIMIZERS if n.startswith("schedule_free_")},
    **{n: _low_rank for n in OPTIMIZERS if n.startswith(("galore_", "apollo_"))},
    "lomo": _lomo, "adalomo": _lomo,
    "grokadamw": _grokadamw,
    "stable_adamw": _stable_adamw,
}
