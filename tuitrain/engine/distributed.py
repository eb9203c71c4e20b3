"""Distributed setup from torchrun's environment: process group, device, model wrapping.

Not under torchrun (no WORLD_SIZE), everything is a plain single-process context. Under
torchrun, `ddp_backend` picks the backend (default nccl on CUDA, gloo on CPU), each process
takes the device of its LOCAL_RANK, and `wrap_model` applies DDP, or FSDP from the preset
(`fsdp.py`).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch
import torch.distributed as dist

from tuitrain.errors import TuitrainError

from . import fsdp


@dataclass
class DistContext:
    """Where this process sits in the job."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")
    is_main: bool = True
    backend: str | None = None

    @property
    def distributed(self) -> bool:
        """Whether a process group is in use."""
        return self.backend is not None


def _need(package: str, field: str, pip: str | None = None) -> None:
    if importlib.util.find_spec(package) is None:
        raise TuitrainError(
            f"distributed.{field}: needs the {package} package (pip install {pip or package})"
        )


def _check_unsupported(args: SimpleNamespace) -> None:
    if args.deepspeed:
        _need("deepspeed", "deepspeed")
        raise TuitrainError("distributed.deepspeed: tuitrain's engine does not drive DeepSpeed; "
                            "use fsdp for sharded training (or HF's Trainer with the exported preset)")
    if args.tpu_num_cores:
        _need("torch_xla", "tpu_num_cores", "torch_xla")
        raise TuitrainError("distributed.tpu_num_cores: TPU training is not run by tuitrain's engine")
    if args.sharded_ddp:
        _need("fairscale", "sharded_ddp")
        raise TuitrainError("distributed.sharded_ddp: removed from HF; use fsdp instead")
    if args.mp_parameters:
        raise TuitrainError("distributed.mp_parameters: SageMaker model parallelism is not available "
                            "outside SageMaker (pip install smdistributed is SageMaker-only)")


def init_distributed(args: SimpleNamespace) -> DistContext:
    """Set up the process group when run under torchrun; a single-process context otherwise."""
    _check_unsupported(args)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    use_cpu = bool(args.use_cpu) or not torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cpu:
        device = torch.device("cpu")
    else:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if world <= 1:
        return DistContext(device=device)
    xpu = args.xpu_backend
    backend = args.ddp_backend or xpu or ("gloo" if use_cpu else "nccl")
    if backend == "ccl":
        _need("oneccl_bindings_for_pytorch", "ddp_backend", "oneccl_bind_pt")
        import oneccl_bindings_for_pytorch  # noqa: F401
    if backend == "nccl" and use_cpu:
        raise TuitrainError("distributed.ddp_backend: nccl needs CUDA GPUs; use gloo on CPU")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, **process_group_options(args))
    rank = dist.get_rank()
    return DistContext(rank=rank, local_rank=local_rank, world_size=dist.get_world_size(),
                       device=device, is_main=rank == 0, backend=backend)


def process_group_options(args: SimpleNamespace) -> dict[str, Any]:
    """`init_process_group`'s options from the preset: HF's `ddp_timeout` (seconds)."""
    import datetime

    return {"timeout": datetime.timedelta(seconds=int(args.ddp_timeout))} if args.ddp_timeout else {}


def saves_checkpoints(args: SimpleNamespace, ctx: DistContext) -> bool:
    """HF's `should_save`: global rank 0, or each node's local rank 0 with `save_on_each_node`
    (nodes without a shared disk)."""
    return ctx.is_main or (bool(args.save_on_each_node) and ctx.local_rank == 0)


def wrap_model(model: torch.nn.Module, args: SimpleNamespace, ctx: DistContext) -> torch.nn.Module:
    """Move `model` to the device and wrap it with DDP, or shard it in place with FSDP
    (`fsdp.py`), when distributed. The optimizer is built after: FSDP replaces the parameters."""
    model = model.to(ctx.device)
    plan = fsdp.fsdp_plan(args)  # checked in one process too, where it shards nothing
    if not ctx.distributed:
        return model
    if plan is not None:
        return fsdp.shard(model, plan, ctx)
    from torch.nn.parallel import DistributedDataParallel as DDP

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    kwargs: dict[str, Any] = {}
    bucket = args.ddp_bucket_cap_mb
    if bucket:
        kwargs["bucket_cap_mb"] = bucket
    unused = args.ddp_find_unused_parameters
    kwargs["find_unused_parameters"] = bool(unused) if unused is not None else False
    as_view = args.ddp_gradient_as_bucket_view
    kwargs["gradient_as_bucket_view"] = bool(as_view) if as_view is not None else False
    broadcast = args.ddp_broadcast_buffers
    if broadcast is not None:
        kwargs["broadcast_buffers"] = bool(broadcast)
    if args.ddp_static_graph:
        kwargs["static_graph"] = True
    return DDP(model, device_ids=device_ids, **kwargs)


def gradient_sync_skipper(model: torch.nn.Module):
    """A context that skips the gradient reduction of one micro-batch (DDP's `no_sync`, or
    FSDP's), or None for a model that reduces nothing."""
    return getattr(model, "no_sync", None) or fsdp.no_sync(model)


def all_reduce_mean(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of `t` over all ranks (itself when single-process)."""
    if not ctx.distributed:
        return t
    out = t.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / ctx.world_size


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op single-process)."""
    if ctx.distributed:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    """Tear the process group down."""
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


class StopVote:
    """Ranks agreeing on a stop (see `signals.StopRequest.agreed`).

    Each `cast(flag)` starts an all-reduce (MAX) of this rank's flag on a gloo group of its
    own (a CPU tensor: no device sync, and never interleaved with the model's collectives on
    the default group) and returns the result of the previous cast, which every rank
    receives at the same step. A stop therefore takes effect one step after a rank saw it.
    """

    def __init__(self, ctx: DistContext) -> None:
        self.group = dist.new_group(backend="gloo")
        self._pending: tuple[Any, torch.Tensor] | None = None

    def cast(self, flag: bool) -> bool:
        """Vote `flag` for this step; returns whether any rank voted to stop one step ago."""
        decided = False
        if self._pending is not None:
            work, tensor = self._pending
            work.wait()
            decided = bool(tensor.item())
        tensor = torch.tensor([1 if flag else 0], dtype=torch.int32)
        self._pending = (dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.group, async_op=True), tensor)
        return decided


def window_mean(t: torch.Tensor, ctx: DistContext) -> float:
    """The logging window's running loss as every rank's mean, for a checkpoint (a collective:
    every rank calls it at the same save). Resumed ranks each restore it and the next logged
    loss is the uninterrupted run's."""
    return float(all_reduce_mean(t, ctx).item())
