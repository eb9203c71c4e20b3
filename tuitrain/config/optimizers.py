"""The `optim` families: one table for the schema's choices, the validator, the help and the engine.

`OPTIMIZERS` maps each `optim` value (transformers 5's `OptimizerNames`, plus Apex's fused
AdamW from the reference) to an `OptimizerInfo`: the packages it imports, the `pip install`
that provides them, and the `optim_args` keys transformers' Trainer reads for it. The
engine's builders (`tuitrain.engine.optim.BUILDERS`) are keyed by the same names, and a test
fails when the two tables disagree. Stdlib only: the UI reads it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OptimizerInfo:
    """One `optim` value.

    `imports`: modules that must be importable; `pip`: the requirement(s) to install them;
    `optim_args`: the keys of `optim_args` this family reads (HF ignores the others), or
    None when every key is passed on to the optimizer.
    """

    imports: tuple[str, ...] = ()
    pip: str = ""
    optim_args: tuple[str, ...] | None = ()


_BNB = OptimizerInfo(("bitsandbytes",), "bitsandbytes>=0.41.1")
_BNB_ADEMAMIX = OptimizerInfo(("bitsandbytes",), "bitsandbytes>=0.44.0",
                              ("beta1", "beta2", "beta3", "alpha", "eps", "t_alpha", "t_beta3"))
_GALORE = OptimizerInfo(("galore_torch",), "galore-torch", ("rank", "update_proj_gap", "scale", "proj_type"))
_APOLLO = OptimizerInfo(("apollo_torch",), "apollo-torch",
                        ("rank", "proj", "scale_type", "update_proj_gap", "scale", "proj_type"))
_SCHEDULE_FREE = OptimizerInfo(("schedulefree", "accelerate"), "schedulefree>=1.2.6 accelerate", ("weight_lr_power", "r"))
_LOMO = OptimizerInfo(("lomo_optim", "accelerate"), "lomo-optim accelerate")
_TORCHAO = OptimizerInfo(("torchao",), "torchao>=0.4.0", ("block_size", "bf16_stochastic_round"))

OPTIMIZERS: dict[str, OptimizerInfo] = {
    "adamw_torch": OptimizerInfo(),
    "adamw_torch_fused": OptimizerInfo(),
    "adamw_torch_xla": OptimizerInfo(("torch_xla",), "torch_xla"),
    "adamw_torch_npu_fused": OptimizerInfo(("torch_npu",), "torch_npu"),
    "adamw_apex_fused": OptimizerInfo(("apex",), "apex (https://github.com/NVIDIA/apex)"),
    "adamw_anyprecision": OptimizerInfo(("torchdistx",), "torchdistx", (
        "use_kahan_summation", "momentum_dtype", "variance_dtype", "compensation_buffer_dtype")),
    "adamw_torch_4bit": _TORCHAO,
    "adamw_torch_8bit": _TORCHAO,
    "adamw_bnb_8bit": _BNB, "adamw_8bit": _BNB, "paged_adamw_32bit": _BNB, "paged_adamw_8bit": _BNB,
    "lion_32bit": _BNB, "lion_8bit": _BNB, "paged_lion_32bit": _BNB, "paged_lion_8bit": _BNB,
    "ademamix": _BNB_ADEMAMIX, "ademamix_8bit": _BNB_ADEMAMIX,
    "paged_ademamix_32bit": _BNB_ADEMAMIX, "paged_ademamix_8bit": _BNB_ADEMAMIX,
    "rmsprop_bnb": OptimizerInfo(("bitsandbytes",), "bitsandbytes>=0.41.1", None),
    "rmsprop_bnb_8bit": OptimizerInfo(("bitsandbytes",), "bitsandbytes>=0.41.1", None),
    "rmsprop_bnb_32bit": OptimizerInfo(("bitsandbytes",), "bitsandbytes>=0.41.1", None),
    "adafactor": OptimizerInfo(("transformers",), "transformers"),
    "sgd": OptimizerInfo(optim_args=("momentum", "dampening", "weight_decay", "nesterov")),
    "adagrad": OptimizerInfo(optim_args=("lr_decay", "weight_decay", "eps")),
    "rmsprop": OptimizerInfo(optim_args=("momentum", "alpha", "eps", "weight_decay", "centered")),
    "schedule_free_adamw": _SCHEDULE_FREE,
    "schedule_free_radam": OptimizerInfo(("schedulefree", "accelerate"), "schedulefree>=1.4.0 accelerate",
                                         ("weight_lr_power", "r")),
    "schedule_free_sgd": _SCHEDULE_FREE,
    "galore_adamw": _GALORE, "galore_adamw_8bit": _GALORE, "galore_adafactor": _GALORE,
    "galore_adamw_layerwise": _GALORE, "galore_adamw_8bit_layerwise": _GALORE,
    "galore_adafactor_layerwise": _GALORE,
    "apollo_adamw": _APOLLO, "apollo_adamw_layerwise": _APOLLO,
    "lomo": _LOMO, "adalomo": _LOMO,
    "grokadamw": OptimizerInfo(("grokadamw",), "grokadamw",
                               ("alpha_init", "lamb", "gamma", "grokking_signal_decay_rate", "gradient_clipping")),
    "stable_adamw": OptimizerInfo(("optimi",), "torch-optimi", ("max_lr", "kahan_sum", "decouple_lr")),
}
OPTIMIZER_NAMES: tuple[str, ...] = tuple(OPTIMIZERS)
LOW_RANK: tuple[str, ...] = tuple(n for n in OPTIMIZERS if n.startswith(("galore_", "apollo_")))


def packages_help() -> str:
    """One sentence naming the package each family needs, for the `optim` field's help."""
    by_pip: dict[str, list[str]] = {}
    for name, info in OPTIMIZERS.items():
        if info.pip:
            by_pip.setdefault(info.pip, []).append(name)
    parts = [f"{pip} ({', '.join(names) if len(names) < 4 else names[0] + ' …'})" for pip, names in by_pip.items()]
    return "Needs a package: " + "; ".join(parts) + "."


def unread_optim_args(optim: str, keys: list[str]) -> list[str]:
    """The `optim_args` keys that family `optim` does not read (transformers ignores them)."""
    info = OPTIMIZERS.get(optim)
    if info is None or info.optim_args is None:
        return []
    return [k for k in keys if k not in info.optim_args]
