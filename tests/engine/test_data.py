"""Train/eval loaders: exact mid-epoch resume, sharding, length orders, column filtering."""

from __future__ import annotations

import json
from types import SimpleNamespace as N

import pytest
import torch

from tuitrain.config import TrainingArgs
from tuitrain.engine.collate import signature_columns
from tuitrain.engine.data import build_eval_loader, build_train_loader
from tuitrain.engine.samplers import ResumableSampler, length_grouped_order, sortish_order
from tuitrain.engine.tasks import TaskBundle
from tuitrain.errors import TuitrainError

torch.set_num_threads(1)


class Items(torch.utils.data.Dataset):
    """Item i: its index, a variable length, and an extra column."""

    def __init__(self, n: int = 37):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return {"idx": torch.tensor(i), "labels": torch.tensor(i % 2), "length": (i * 7) % 13 + 1, "extra": torch.tensor(1.0)}


class Model(torch.nn.Module):
    def forward(self, idx, labels=None):
        return {"logits": idx.float()}


def bundle(n: int = 37) -> TaskBundle:
    return TaskBundle(model=Model(), train_dataset=Items(n), eval_dataset=Items(n))


def args(**kw):
    base = dict(per_device_train_batch_size=4, per_device_eval_batch_size=5, seed=3)
    base.update(kw)
    return TrainingArgs(**base)


def order(loader) -> list[int]:
    return [i for batch in loader for i in batch["idx"].tolist()]


def test_epoch_order_is_seeded_and_changes_per_epoch():
    b, a = bundle(), args()
    e0 = order(build_train_loader(b, a, None, epoch=0))
    assert sorted(e0) == list(range(37))
    assert e0 == order(build_train_loader(b, a, None, epoch=0))
    assert e0 != order(build_train_loader(b, a, None, epoch=1))
    assert e0 != order(build_train_loader(b, args(data_seed=99), None, epoch=0))
    assert order(build_train_loader(b, args(train_sampling_strategy="sequential"), None)) == list(range(37))


@pytest.mark.parametrize("skip", [0, 1, 5, 9])
def test_skip_batches_gives_exact_tail(skip):
    b, a = bundle(), args()
    full = list(build_train_loader(b, a, None, epoch=2))
    resumed = build_train_loader(b, a, None, epoch=2, skip_batches=skip)
    tail = list(resumed)
    assert len(resumed) == len(full) - skip == len(tail)
    assert all(torch.equal(x["idx"], y["idx"]) for x, y in zip(full[skip:], tail))
    assert resumed.sampler.state_dict() == {"epoch": 2, "batches_seen": len(full)}


def test_skipped_batches_are_not_loaded():
    loaded = []

    class Spy(Items):
        def __getitem__(self, i):
            loaded.append(i)
            return super().__getitem__(i)

    b = TaskBundle(model=Model(), train_dataset=Spy())
    list(build_train_loader(b, args(), None, epoch=0, skip_batches=8))
    assert len(loaded) == 37 - 32


def test_state_dict_is_json_and_round_trips():
    b, a = bundle(), args()
    loader = build_train_loader(b, a, None, epoch=1)
    it = iter(loader)
    for _ in range(3):
        next(it)
    state = json.loads(json.dumps(loader.sampler.state_dict()))
    assert state == {"epoch": 1, "batches_seen": 3}
    rest = [x["idx"].tolist() for x in it]
    s = ResumableSampler(37, 4, seed=3)
    s.load_state_dict(state)
    resumed = build_train_loader(b, a, None, epoch=s.epoch, skip_batches=s.skip_batches)
    assert [x["idx"].tolist() for x in resumed] == rest


@pytest.mark.parametrize("world", [2, 3, 4])
def test_distributed_shards_disjoint_covering_and_padded(world):
    b, a = bundle(), args()
    shards = [order(build_train_loader(b, a, N(rank=r, world_size=world), epoch=0)) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank takes as many steps
    flat = [i for s in shards for i in s]
    assert set(flat) == set(range(37))
    padding = len(flat) - 37
    assert padding == (-37) % world
    seen = set()
    dupes = [i for s in zip(*shards) for i in s if i in seen or seen.add(i)]
    assert len(dupes) == padding
    # resume mid-epoch on each rank gives that rank's tail
    for r in range(world):
        tail = order(build_train_loader(b, a, N(rank=r, world_size=world), epoch=0, skip_batches=1))
        assert tail == shards[r][4:]


def test_eval_loader_in_order_and_sharded_without_padding():
    b, a = bundle(), args()
    assert order(build_eval_loader(b, a, None)) == list(range(37))
    shards = [order(build_eval_loader(b, a, N(rank=r, world_size=3))) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(37))
    assert build_eval_loader(TaskBundle(model=Model(), train_dataset=Items()), a, None) is None


def test_group_by_length_uses_length_column_and_hf_megabatches():
    lengths = [(i * 7) % 13 + 1 for i in range(37)]
    b = bundle()
    got = order(build_train_loader(b, args(group_by_length=True, gradient_accumulation_steps=1), None))
    gen = torch.Generator().manual_seed(3)
    assert got == length_grouped_order(lengths, 4, gen)
    assert lengths[got[0]] == max(lengths)  # longest first
    # megabatches of 2 x 4 (37 // 16 = 2), each sorted longest first after its head, which
    # may have been swapped with the overall longest
    for start in range(0, 37, 8):
        mega = [lengths[i] for i in got[start + 1 : start + 8]]
        assert mega == sorted(mega, reverse=True)
    assert sorted(got) == list(range(37))


def test_length_grouped_order_matches_transformers():
    transformers_pt = pytest.importorskip("transformers.trainer_pt_utils")
    lengths = [(i * 5) % 17 + 1 for i in range(101)]
    ours = length_grouped_order(lengths, 4, torch.Generator().manual_seed(7))
    theirs = transformers_pt.get_length_grouped_indices(lengths, 4, generator=torch.Generator().manual_seed(7))
    assert ours == list(theirs)


def test_group_by_length_falls_back_to_input_ids_length():
    class Seqs(torch.utils.data.Dataset):
        def __len__(self):
            return 20

        def __getitem__(self, i):
            return {"input_ids": torch.zeros(i % 5 + 1, dtype=torch.long)}

    class M(torch.nn.Module):
        def forward(self, input_ids):
            return {}

    b = TaskBundle(model=M(), train_dataset=Seqs(), collate_fn=lambda items: {"n": [len(x["input_ids"]) for x in items]})
    batches = [x["n"] for x in build_train_loader(b, args(group_by_length=True), None)]
    assert batches[0][0] == 5


def test_sortish_order_batches_sorted_and_longest_first():
    lengths = [(i * 7) % 13 + 1 for i in range(300)]
    got = sortish_order(lengths, 4, torch.Generator().manual_seed(0))
    assert sorted(got) == list(range(300))
    assert lengths[got[0]] == max(lengths)
    for k in range(0, 300, 4):
        batch = [lengths[i] for i in got[k : k + 4]]
        assert batch == sorted(batch, reverse=True)
    b = bundle()
    assert order(build_train_loader(b, args(sortish_sampler=True), None)) == sortish_order(
        [(i * 7) % 13 + 1 for i in range(37)], 4, torch.Generator().manual_seed(3))


def test_remove_unused_columns_and_label_names():
    b, a = bundle(), args()
    assert set(signature_columns(b.model, a)) == {"idx", "labels", "label", "label_ids"}
    batch = next(iter(build_train_loader(b, a, None)))
    assert set(batch) == {"idx", "labels"}
    batch = next(iter(build_train_loader(b, args(label_names=["extra"]), None)))
    assert set(batch) == {"idx", "labels", "extra"}  # labels: a forward argument
    batch = next(iter(build_train_loader(b, args(remove_unused_columns=False), None)))
    assert set(batch) == {"idx", "labels", "length", "extra"}
    batch = next(iter(build_eval_loader(b, a, None)))
    assert set(batch) == {"idx", "labels"}

    class Kw(torch.nn.Module):
        def forward(self, **kwargs):
            return {}

    # As HF: a `**kwargs` forward names no column, so none is kept, and that is said in one line
    kw = TaskBundle(model=Kw(), train_dataset=Items())
    with pytest.raises(TuitrainError, match="remove_unused_columns: no column of the dataset .*extra, idx, "
                                            "labels, length.* is an argument of Kw.forward"):
        next(iter(build_train_loader(kw, a, None)))
    assert set(next(iter(build_train_loader(kw, args(remove_unused_columns=False), None)))) == {
        "idx", "labels", "length", "extra"}


def test_drop_last_and_prefetch_without_workers():
    b = bundle()
    assert len(list(build_train_loader(b, args(dataloader_drop_last=True), None))) == 9
    assert len(list(build_train_loader(b, args(), None))) == 10
    with pytest.raises(TuitrainError, match="prefetch_factor"):
        build_train_loader(b, args(dataloader_prefetch_factor=2), None)


class RandomItems(Items):
    """Items that draw from torch's RNG: deterministic only with seeded workers."""

    def __getitem__(self, i):
        item = super().__getitem__(i)
        item["noise"] = torch.rand(())
        return item


class NoiseModel(torch.nn.Module):
    def forward(self, idx, noise, labels=None):
        return {}


def test_workers_are_deterministic_and_resume_exactly():
    b = TaskBundle(model=NoiseModel(), train_dataset=RandomItems())
    a = args(dataloader_num_workers=2, dataloader_prefetch_factor=2, dataloader_persistent_workers=False)
    one = [(x["idx"].tolist(), x["noise"].tolist()) for x in build_train_loader(b, a, None, epoch=1)]
    two = [(x["idx"].tolist(), x["noise"].tolist()) for x in build_train_loader(b, a, None, epoch=1)]
    assert one == two
    no_workers = [x["idx"].tolist() for x in build_train_loader(b, args(), None, epoch=1)]
    assert [x[0] for x in one] == no_workers
    tail = [x["idx"].tolist() for x in build_train_loader(b, a, None, epoch=1, skip_batches=4)]
    assert tail == no_workers[4:]


def test_pin_memory_only_on_cuda():
    loader = build_train_loader(bundle(), args(dataloader_pin_memory=True), N(rank=0, world_size=1, device="cpu"))
    assert loader.pin_memory is False
