"""Train and eval DataLoaders: resumable order, sharding, length grouping, column filtering."""

from __future__ import annotations

import random
from typing import Callable

import torch
from torch.utils.data import DataLoader

from tuitrain.errors import TuitrainError

from .collate import RemoveColumnsCollator, check_columns, default_collator, signature_columns, unwrap_model
from .samplers import ResumableSampler, dataset_lengths, length_grouped_order, sortish_order

__all__ = ["ResumableSampler", "ResumableLoader", "build_train_loader", "start_epoch", "build_eval_loader",
           "data_seed", "column_filter"]


def data_seed(args) -> int:
    """dataloader_seed, else data_seed, else seed."""
    for value in (args.dataloader_seed, args.data_seed, args.seed):
        if value is not None:
            return int(value)
    return 42


def column_filter(bundle, args, dataset=None) -> Callable:
    """The collate function (the bundle's, else HF's default) with remove_unused_columns applied
    as HF applies it: only the model's signature columns reach the collator."""
    collate = default_collator(bundle)
    if not args.remove_unused_columns:
        return collate
    columns = signature_columns(bundle.model, args)
    if columns is None:
        return collate
    name = type(unwrap_model(bundle.model)).__name__
    check_columns(dataset, columns, name)
    return RemoveColumnsCollator(collate, columns, name)


def _seed_worker(worker_id: int) -> None:
    # torch gives each worker initial_seed = loader base seed + worker_id; the base seed
    # comes from the loader's seeded generator, so python/numpy RNGs in workers repeat too.
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    try:
        import numpy as np
    except ImportError:
        return
    np.random.seed(seed)


def _worker_seed(seed: int, epoch: int) -> int:
    """The seed of the generator that draws an epoch's worker seeds."""
    return seed * 1000003 + epoch


def _worker_kwargs(args, ctx, epoch: int, seed: int) -> dict:
    workers = int(args.dataloader_num_workers)
    on_cuda = torch.device(getattr(ctx, "device", "cpu")).type == "cuda"
    kw = {"num_workers": workers, "pin_memory": bool(args.dataloader_pin_memory) and on_cuda}
    if workers > 0:
        gen = torch.Generator().manual_seed(_worker_seed(seed, epoch))
        kw.update(worker_init_fn=_seed_worker, generator=gen,
                  persistent_workers=bool(args.dataloader_persistent_workers))
        if args.dataloader_prefetch_factor is not None:
            kw["prefetch_factor"] = int(args.dataloader_prefetch_factor)
        if args.dataloader_multiprocessing_context:
            kw["multiprocessing_context"] = args.dataloader_multiprocessing_context
    elif args.dataloader_prefetch_factor is not None:
        raise TuitrainError("dataloader.dataloader_prefetch_factor: needs dataloader_num_workers > 0")
    return kw


class ResumableLoader(DataLoader):
    """A DataLoader that counts the batches it hands out in `sampler.batches_seen`."""

    def __iter__(self):
        sampler = self.sampler
        for batch in super().__iter__():
            sampler.batches_seen += 1
            yield batch


def _strategy(args) -> str:
    if args.group_by_length:
        return "group_by_length"
    if args.sortish_sampler:
        return "sortish"
    return str(args.train_sampling_strategy)


def build_train_loader(bundle, args, ctx=None, epoch: int = 0, skip_batches: int = 0) -> ResumableLoader:
    """The train loader for `epoch`, starting `skip_batches` batches in (nothing skipped is loaded)."""
    dataset = bundle.train_dataset
    batch = int(args.per_device_train_batch_size)
    seed = data_seed(args)
    rank, world = int(getattr(ctx, "rank", 0)), int(getattr(ctx, "world_size", 1))
    strategy = _strategy(args)
    order_fn = None
    if strategy in ("group_by_length", "sortish"):
        lengths = dataset_lengths(dataset, str(args.length_column_name))
        if strategy == "group_by_length":
            group = batch * int(args.gradient_accumulation_steps)
            order_fn = lambda gen: length_grouped_order(lengths, group, gen)  # noqa: E731
        else:
            order_fn = lambda gen: sortish_order(lengths, batch, gen)  # noqa: E731
    sampler = ResumableSampler(len(dataset), batch, seed=seed, epoch=epoch, skip_batches=skip_batches,
                               rank=rank, world_size=world, shuffle=strategy != "sequential",
                               order_fn=order_fn)
    return ResumableLoader(dataset, batch_size=batch, sampler=sampler, collate_fn=column_filter(bundle, args, dataset),
                           drop_last=bool(args.dataloader_drop_last),
                           **_worker_kwargs(args, ctx, epoch, seed))


def start_epoch(loader: ResumableLoader, args, epoch: int, skip_batches: int = 0) -> None:
    """Point a train loader built once for the whole run at `epoch`, `skip_batches` in: its
    next iteration yields what `build_train_loader(…, epoch, skip_batches)` would, and workers
    started for it draw that loader's seeds. Persistent workers (`dataloader_persistent_workers`)
    keep running from epoch to epoch, so they keep the seeds of the epoch they started in."""
    loader.sampler.set_epoch(epoch, skip_batches)
    if loader.generator is not None:
        loader.generator.manual_seed(_worker_seed(data_seed(args), epoch))


class _ShardSampler(torch.utils.data.Sampler[int]):
    """In-order, disjoint eval shards (no padding, so no example counts twice)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def build_eval_loader(bundle, args, ctx=None, dataset=None) -> DataLoader | None:
    """The eval (or predict) loader, in order, sharded across ranks; None without a dataset."""
    dataset = bundle.eval_dataset if dataset is None else dataset
    if dataset is None:
        return None
    batch = int(args.per_device_eval_batch_size)
    rank, world = int(getattr(ctx, "rank", 0)), int(getattr(ctx, "world_size", 1))
    kw = _worker_kwargs(args, ctx, 0, data_seed(args))
    return DataLoader(dataset, batch_size=batch, sampler=_ShardSampler(len(dataset), rank, world),
                      collate_fn=column_filter(bundle, args, dataset), drop_last=False, **kw)
