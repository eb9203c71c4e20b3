"""Index orders for the train loader: random, sequential, length-grouped, sortish.

Every order is a pure function of (seed, epoch), so a resumed run can rebuild the epoch's
order and skip what it already consumed without loading it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def random_order(n: int, gen: torch.Generator) -> list[int]:
    return torch.randperm(n, generator=gen).tolist()


def length_grouped_order(lengths: Sequence[int], batch_size: int, gen: torch.Generator,
                         mega_batch_mult: int | None = None) -> list[int]:
    """HF's `get_length_grouped_indices`: shuffle, sort megabatches by length (longest
    first), and move the overall longest example to the very front (an early OOM)."""
    n = len(lengths)
    if mega_batch_mult is None:
        mega_batch_mult = min(n // (batch_size * 4), 50) or 1
    indices = torch.randperm(n, generator=gen)
    size = mega_batch_mult * batch_size
    megas = [indices[i : i + size].tolist() for i in range(0, n, size)]
    megas = [sorted(m, key=lambda i: lengths[i], reverse=True) for m in megas]
    if not megas:
        return []
    maxima = [lengths[m[0]] for m in megas]
    top = max(range(len(maxima)), key=lambda j: (maxima[j], -j))
    megas[0][0], megas[top][0] = megas[top][0], megas[0][0]
    return [i for m in megas for i in m]


def sortish_order(lengths: Sequence[int], batch_size: int, gen: torch.Generator) -> list[int]:
    """fastai / transformers' SortishSampler: shuffle, sort chunks of 50 batches by length,
    cut into batches, put the batch with the longest example first, shuffle the rest."""
    n = len(lengths)
    idxs = torch.randperm(n, generator=gen).tolist()
    size = batch_size * 50
    sorted_idx = [i for c in range(0, n, size) for i in sorted(idxs[c : c + size], key=lambda i: lengths[i], reverse=True)]
    chunks = [sorted_idx[i : i + batch_size] for i in range(0, n, batch_size)]
    if not chunks:
        return []
    top = max(range(len(chunks)), key=lambda j: (lengths[chunks[j][0]], -j))
    chunks[0], chunks[top] = chunks[top], chunks[0]
    rest = chunks[1:]
    perm = torch.randperm(len(rest), generator=gen).tolist()
    return chunks[0] + [i for j in perm for i in rest[j]]


def shard(order: list[int], rank: int, world_size: int, pad: bool) -> list[int]:
    """This rank's share, like DistributedSampler: pad by wrapping to a multiple of world_size
    (so every rank takes as many steps), then take every world_size-th index."""
    if world_size <= 1:
        return order
    if pad and order and len(order) % world_size:
        need = world_size - len(order) % world_size
        order = order + (order * (need // len(order) + 1))[:need]
    return order[rank::world_size]


def dataset_lengths(dataset, column: str) -> list[int]:
    """Each example's length: the dataset's `lengths` attribute, the item's `column`, or the
    length of its `input_ids` (its first tensor otherwise)."""
    cached = getattr(dataset, "lengths", None)
    if cached is not None and len(cached) == len(dataset):
        return [int(x) for x in cached]
    out = []
    for i in range(len(dataset)):
        item = dataset[i]
        if isinstance(item, dict) and column in item:
            out.append(int(item[column]))
            continue
        value = item.get("input_ids") if isinstance(item, dict) else item
        if value is None and isinstance(item, dict):
            value = next((v for v in item.values() if hasattr(v, "__len__")), None)
        out.append(len(value) if value is not None and hasattr(value, "__len__") else 1)
    return out


class ResumableSampler(torch.utils.data.Sampler[int]):
    """This rank's indices for one epoch, from a seeded order; starts `skip_batches` in.

    `state_dict()` is JSON: `{"epoch", "batches_seen"}`. The loader (see `data.py`) counts
    `batches_seen` as batches reach the trainer, so prefetching workers do not skew it.
    """

    def __init__(self, num_examples: int, batch_size: int, *, seed: int, epoch: int = 0,
                 skip_batches: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 order_fn: Callable[[torch.Generator], list[int]] | None = None, pad: bool = True):
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.rank, self.world_size = rank, world_size
        self.shuffle = shuffle
        self.order_fn = order_fn
        self.pad = pad
        self.epoch = epoch
        self.skip_batches = skip_batches
        self.batches_seen = skip_batches

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Start `epoch` (from `skip_batches` in) on the next iteration."""
        self.epoch, self.skip_batches, self.batches_seen = epoch, skip_batches, skip_batches

    def epoch_indices(self) -> list[int]:
        """This rank's full order for the current epoch (nothing skipped)."""
        if not self.shuffle:
            order = list(range(self.num_examples))
        else:
            gen = torch.Generator().manual_seed(self.seed + self.epoch)
            order = self.order_fn(gen) if self.order_fn else random_order(self.num_examples, gen)
        return shard(order, self.rank, self.world_size, self.pad)

    def __iter__(self):
        return iter(self.epoch_indices()[self.skip_batches * self.batch_size :])

    def __len__(self) -> int:
        total = self.num_examples
        if self.world_size > 1:
            total = -(-total // self.world_size) if self.pad else len(range(self.rank, total, self.world_size))
        return max(0, total - self.skip_batches * self.batch_size)

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_seen": self.batches_seen}

    def load_state_dict(self, state: dict) -> None:
        self.set_epoch(int(state["epoch"]), int(state["batches_seen"]))
