"""FSDP: the model sharded across ranks with FSDP2 (`torch.distributed.fsdp.fully_shard`),
configured from `fsdp` / `fsdp_config` as transformers 5 reads them, and checkpointed as full
(unsharded) state dicts.

transformers 5 runs FSDP2 by default and refuses the FSDP1-only strategies under it; so does
this module: `full_shard` reshards parameters after the forward pass, `shard_grad_op` keeps
them gathered until the backward pass, `offload` keeps them in host memory, `auto_wrap` is
the default. Each transformer layer (`fsdp_config.transformer_layer_cls_to_wrap`, else the
model's `_no_split_modules`) becomes its own FSDP unit, or each module of `min_num_params`
parameters with the size-based policy; the model itself is the outermost unit.

A checkpoint holds what a single process would save: every rank takes part in gathering the
full state dicts (`torch.distributed.checkpoint.state_dict`), rank 0 writes them in the usual
files, and loading hands each rank its shard of the full tensors. So an FSDP checkpoint
resumes under FSDP with any number of ranks, or in one process, and its `model.safetensors`
is the plain model's. Gradient clipping sees the whole model: `clip_grad_norm_` over the
sharded (DTensor) gradients computes the global norm.
"""

from __future__ import annotations

import contextlib
import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from tuitrain.errors import TuitrainError

FIELD = "distributed.fsdp"
CONFIG_FIELD = "distributed.fsdp_config"
WRAP_POLICIES = ("TRANSFORMER_BASED_WRAP", "SIZE_BASED_WRAP", "NO_WRAP")
# fsdp_config keys of FSDP1 (transformers ignores them under FSDP2), and what FSDP2 does instead.
_FSDP1_KEYS = {
    "backward_prefetch": "FSDP2 prefetches by itself",
    "forward_prefetch": "FSDP2 prefetches by itself",
    "limit_all_gathers": "FSDP2 limits them by itself",
}
# FSDP1 keys whose true value is what FSDP2 always does.
_ALWAYS_TRUE = {"use_orig_params": "FSDP2 always trains the original parameters",
                "sync_module_states": "every rank starts from rank 0's weights"}


@dataclass(frozen=True)
class FsdpPlan:
    """How to shard: what `fsdp` and `fsdp_config` ask for, checked."""

    reshard_after_forward: bool = True
    cpu_offload: bool = False
    wrap_policy: str = "TRANSFORMER_BASED_WRAP"
    layer_classes: tuple[str, ...] = ()
    min_num_params: int = 0
    activation_checkpointing: bool = False


def _bool(value: Any, key: str) -> bool:
    text = str(value).lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise TuitrainError(f"{CONFIG_FIELD}: {key} = {value!r} is not true or false")


def _read_config(config: Any) -> dict[str, Any]:
    # transformers accepts accelerate's spellings (fsdp_min_num_params, …) without the prefix
    return {(k[5:] if k.startswith("fsdp_") else k): v for k, v in dict(config or {}).items()}


def fsdp_plan(args: Any) -> FsdpPlan | None:
    """The checked plan of `args.fsdp` / `args.fsdp_config`; None when FSDP is off. The words
    of `fsdp` were checked with the preset (`config.rules`); the `fsdp_config` table (or JSON
    file) is checked here: everything tuitrain cannot honour is refused in one line."""
    raw = args.fsdp or ""
    options = raw.split()
    if not options:
        return None
    config = _read_config(args.fsdp_config)
    version = config.pop("version", 2)
    if str(version) != "2":
        raise TuitrainError(f"{CONFIG_FIELD}: version {version!r}: tuitrain runs FSDP2 (FSDP1 is deprecated, "
                            "and transformers removes it in 5.20)")
    if _bool(config.pop("xla", False), "xla"):
        raise TuitrainError(f"{CONFIG_FIELD}: xla: PyTorch/XLA FSDP is not run by tuitrain's engine")
    if config.pop("state_dict_type", "FULL_STATE_DICT") != "FULL_STATE_DICT":
        raise TuitrainError(f"{CONFIG_FIELD}: state_dict_type: tuitrain saves FULL_STATE_DICT checkpoints "
                            "(a sharded torch.distributed.checkpoint folder keeps pickled metadata, which a "
                            "tuitrain checkpoint never holds)")
    if _bool(config.pop("cpu_ram_efficient_loading", False), "cpu_ram_efficient_loading"):
        raise TuitrainError(f"{CONFIG_FIELD}: cpu_ram_efficient_loading: every rank builds the task's model "
                            "(then takes rank 0's weights); set it to false")
    for key, why in _ALWAYS_TRUE.items():
        if key in config and not _bool(config.pop(key), key):
            raise TuitrainError(f"{CONFIG_FIELD}: {key} = false is FSDP1's; under FSDP2 {why}")
    reshard = "shard_grad_op" not in options
    if "reshard_after_forward" in config:
        value = config.pop("reshard_after_forward")
        if any(o in options for o in ("full_shard", "shard_grad_op")) and _bool(value, "reshard_after_forward") != reshard:
            raise TuitrainError(f"{CONFIG_FIELD}: reshard_after_forward = {value} contradicts fsdp = {raw!r}")
        reshard = _bool(value, "reshard_after_forward")
    offload = "offload" in options or _bool(config.pop("cpu_offload", False), "cpu_offload")
    layers = config.pop("transformer_layer_cls_to_wrap", None) or ()
    layers = (layers,) if isinstance(layers, str) else tuple(str(c) for c in layers)
    min_params = config.pop("min_num_params", 0) or args.fsdp_min_num_params or 0
    policy = config.pop("auto_wrap_policy", None)
    if policy is None:
        policy = "SIZE_BASED_WRAP" if min_params and not layers else "TRANSFORMER_BASED_WRAP"
    if policy not in WRAP_POLICIES:
        raise TuitrainError(f"{CONFIG_FIELD}: auto_wrap_policy {policy!r} (choose from {', '.join(WRAP_POLICIES)})")
    if policy == "SIZE_BASED_WRAP" and not int(min_params) > 0:
        raise TuitrainError(f"{CONFIG_FIELD}: SIZE_BASED_WRAP needs min_num_params > 0")
    if min_params and policy != "SIZE_BASED_WRAP":
        raise TuitrainError(f"{CONFIG_FIELD}: min_num_params applies to auto_wrap_policy = \"SIZE_BASED_WRAP\", "
                            f"not {policy}")
    checkpointing = _bool(config.pop("activation_checkpointing", False), "activation_checkpointing")
    for key in list(config):
        if key in _FSDP1_KEYS:
            raise TuitrainError(f"{CONFIG_FIELD}: {key} is an FSDP1 option ({_FSDP1_KEYS[key]}); remove it")
    if config:
        raise TuitrainError(f"{CONFIG_FIELD}: unknown key{'s' if len(config) > 1 else ''} {', '.join(sorted(config))}")
    return FsdpPlan(reshard, offload, policy, layers, int(min_params), checkpointing)


def _units(model: torch.nn.Module, plan: FsdpPlan) -> list[torch.nn.Module]:
    """The submodules that become FSDP units of their own, each after the units inside it."""
    if plan.wrap_policy == "NO_WRAP":
        return []
    if plan.wrap_policy == "TRANSFORMER_BASED_WRAP":
        names = set(plan.layer_classes or getattr(model, "_no_split_modules", None) or ())
        found = {type(m).__name__ for m in model.modules()}
        missing = sorted(names - found) if plan.layer_classes else []
        if missing:
            raise TuitrainError(f"{CONFIG_FIELD}: transformer_layer_cls_to_wrap names {', '.join(missing)}, "
                                f"which the model does not have")
        # children before parents: a unit is sharded after the units inside it
        return [m for m in reversed(list(model.modules())) if m is not model and type(m).__name__ in names]
    units: list[torch.nn.Module] = []
    wrapped: set[int] = set()

    def visit(module: torch.nn.Module) -> int:  # torch's size-based policy: parameters not yet in a unit
        count = sum(visit(child) for child in module.children())
        count += sum(p.numel() for p in module.parameters(recurse=False) if id(p) not in wrapped)
        if module is not model and count >= plan.min_num_params:
            units.append(module)
            wrapped.update(id(p) for p in module.parameters())
            return 0
        return count

    visit(model)
    return units


def shard(model: torch.nn.Module, plan: FsdpPlan, ctx) -> torch.nn.Module:
    """Shard `model` (already on `ctx.device`) in place across the ranks of `ctx`; returns it.
    Every rank first takes rank 0's weights, so all shard the same model."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import CPUOffloadPolicy, fully_shard

    if plan.activation_checkpointing:
        from .model_setup import enable_activation_checkpointing

        enable_activation_checkpointing(model, None)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)
    mesh = init_device_mesh(ctx.device.type, (ctx.world_size,))
    kwargs: dict[str, Any] = {"mesh": mesh, "reshard_after_forward": plan.reshard_after_forward}
    if plan.cpu_offload and ctx.device.type != "cpu":  # on the CPU the parameters are in host memory already
        kwargs["offload_policy"] = CPUOffloadPolicy()
    for unit in _units(model, plan):
        fully_shard(unit, **kwargs)
    fully_shard(model, **kwargs)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether `model`'s parameters are FSDP shards (DTensors)."""
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in model.parameters())


def no_sync(model: torch.nn.Module):
    """A context that keeps FSDP from reducing gradients (all but a window's last micro-batch:
    they accumulate unsharded and are reduced once), or None for a model that is not FSDP's."""
    inner = getattr(model, "_orig_mod", model)
    toggle = getattr(type(inner), "set_requires_gradient_sync", None)
    if toggle is None:
        return None

    @contextlib.contextmanager
    def skip():
        inner.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            inner.set_requires_gradient_sync(True)

    return skip


def _param_index(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, int]:
    """Each parameter name (every name of a tied one) -> the index `optimizer.state_dict()`
    gives that parameter."""
    order = {id(p): i for i, p in enumerate(p for group in optimizer.param_groups for p in group["params"])}
    return {n: order[id(p)] for n, p in model.named_parameters(remove_duplicate=False) if id(p) in order}


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None):
    """`(model_state, optimizer_state)` gathered from every rank's shards (a collective: every
    rank calls it); rank 0 gets them whole on the CPU, as `model.state_dict()` and
    `optimizer.state_dict()` of the unsharded model would be, the others `(None, None)`."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                         get_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    model_state = get_model_state_dict(model, options=options)
    optim_state = get_optimizer_state_dict(model, optimizer, options=options) if optimizer is not None else None
    if dist.get_rank() != 0:
        return None, None
    first: dict[int, str] = {}
    for name, p in model.named_parameters(remove_duplicate=False):  # tied weights: one tensor, as unsharded
        if first.setdefault(id(p), name) != name and name in model_state:
            model_state[name] = model_state[first[id(p)]]
    if optim_state is not None:
        index = _param_index(model, optimizer)
        optim_state = {"state": {index[name]: value for name, value in optim_state["state"].items()},
                       "param_groups": [{**group, "params": [index[name] for name in group["params"]]}
                                        for group in optim_state["param_groups"]]}
    return model_state, optim_state


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    model_state: dict[str, torch.Tensor], optim_state: dict | None) -> None:
    """Give each rank its shard of checkpoint tensors every rank has read whole (`optim_state`
    in `optimizer.state_dict()`'s numbering). A collective: every rank calls it."""
    from torch.distributed.checkpoint.state_dict import (StateDictOptions, set_model_state_dict,
                                                         set_optimizer_state_dict)

    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_state, options=options)
    if optimizer is not None and optim_state is not None:
        names: dict[int, str] = {}
        for name, i in _param_index(model, optimizer).items():
            names.setdefault(i, name)  # a tied parameter's first name, as named_parameters() gives it
        by_name = {"state": {names[i]: value for i, value in optim_state["state"].items()},
                   "param_groups": [{**group, "params": [names[i] for i in group["params"]]}
                                    for group in optim_state["param_groups"]]}
        set_optimizer_state_dict(model, optimizer, by_name, options=options)


def even_forwards(batches: int, ctx) -> int:
    """The most eval batches any rank has (each rank's forward passes gather the shards of all,
    so every rank must run as many); a rank without any is refused."""
    counts = torch.tensor([batches, -batches], dtype=torch.int64, device=ctx.device)
    dist.all_reduce(counts, op=dist.ReduceOp.MAX)
    most, fewest = int(counts[0]), -int(counts[1])
    if fewest == 0:
        raise TuitrainError(f"{FIELD}: the eval set has fewer examples than the {ctx.world_size} processes; "
                            "each needs one to run the sharded model")
    return most


class SyncedGenerate:
    """A sharded model as sample generation sees it: every rank generates (each forward pass
    gathers the shards from all ranks), and a `generate` that can stop early at an end token
    (transformers') is asked to keep the ranks in step (`synced_gpus`)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def generate(self, *args, **kwargs):  # noqa: D102
        generate = self._model.generate
        if "synced_gpus" in inspect.signature(generate).parameters:
            kwargs.setdefault("synced_gpus", True)
        return generate(*args, **kwargs)
