"""A plug-in task that records what the engine hands it: `probe_task.py:build`.

A linear regression whose forward records, for every call, whether it trains, the dataset
indices of the batch, the process that loaded each item, and the keys it received;
`compute_metrics` records each call's arguments. The records live on the model
(`model.seen`, `model.metric_calls`, `model.enabled`), which the in-process trainer keeps, so a
test reads them after `Trainer.train()`.

Options (all optional): `n` train items [24], `n_eval` [10], `features` [3], `strict` (a forward
without `**kwargs`, so `remove_unused_columns` has something to drop) [false], `label_key`
[labels], `varlen` (items carry `input_ids` of varying length and a `len2` column) [false],
`tokens` (token-level labels with -100 padding, a loss summed over `num_items_in_batch`)
[false], `nan_steps` (training forward calls, 1-based, whose loss is NaN) [[]],
`checkpointing` (the model takes `activation_checkpointing_enable` and records its arguments)
[false].
"""

from __future__ import annotations

import os

import torch
from torch import nn

from tuitrain.engine.tasks import TaskBundle


class Items(torch.utils.data.Dataset):
    def __init__(self, n: int, features: int, offset: int, opts: dict):
        gen = torch.Generator().manual_seed(1234 + offset)
        self.x = torch.randn(n, features, generator=gen)
        self.y = self.x.sum(dim=1) * 0.5 + 0.1 * torch.randn(n, generator=gen)
        self.offset, self.opts = offset, opts

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        item = {"x": self.x[i], self.opts.get("label_key", "labels"): self.y[i],
                "index": torch.tensor(self.offset + i), "pid": torch.tensor(os.getpid())}
        if self.opts.get("varlen"):
            length = 1 + (i * 7) % 11
            item["input_ids"] = torch.arange(length) % 5
            item["len2"] = torch.tensor(12 - length)  # the opposite order to input_ids' length
        if self.opts.get("tokens"):
            # rank-dependent label counts: items of odd index have most labels masked out
            labels = torch.full((6,), 1.0)
            if i % 2:
                labels[1:] = -100.0
            item[self.opts.get("label_key", "labels")] = labels
        return item


def _collate(items: list[dict]) -> dict:
    out = {}
    for key in items[0]:
        values = [item[key] for item in items]
        if key == "input_ids":
            width = max(len(v) for v in values)
            out[key] = torch.stack([torch.cat([v, torch.zeros(width - len(v), dtype=v.dtype)]) for v in values])
        else:
            out[key] = torch.stack(values)
    return out


class Probe(nn.Module):
    def __init__(self, features: int, opts: dict):
        super().__init__()
        self.lin = nn.Linear(features, 6 if opts.get("tokens") else 1)
        self.opts = opts
        self.seen: list[dict] = []
        self.metric_calls: list[dict] = []
        self.enabled: list[dict] = []
        self.train_calls = 0

    def _record(self, x, kw) -> None:
        index, pid = kw.get("index"), kw.get("pid")
        self.seen.append({"training": self.training, "rows": int(x.shape[0]),
                          "index": index.tolist() if index is not None else None,
                          "pid": sorted(set(pid.tolist())) if pid is not None else None, "keys": sorted(kw)})

    def compute(self, x, labels, kw):
        pred = self.lin(x)
        if not self.opts.get("tokens"):
            pred = pred.squeeze(-1)
        out = {"logits": pred}
        if labels is not None:
            if self.training:
                self.train_calls += 1
            if self.opts.get("tokens"):
                mask = labels != -100
                err = ((pred - labels) ** 2) * mask
                n = kw.get("num_items_in_batch")
                out["loss"] = err.sum() / (n if n is not None else mask.sum())
            else:
                n = kw.get("num_items_in_batch")  # HF's contract: normalise over the window's items
                err = (pred - labels) ** 2
                out["loss"] = err.sum() / n if n is not None else err.mean()
            if self.training and self.train_calls in self.opts.get("nan_steps", []):
                # a NaN loss whose gradient is the plain loss's: the weights stay finite
                out["loss"] = out["loss"] + torch.tensor(float("nan"))
        return out


class LooseProbe(Probe):
    # The probe items' columns are named parameters: remove_unused_columns keeps only those (HF's
    # rule: `**kw` names none of them); it still takes what the engine adds (num_items_in_batch).
    def forward(self, x, labels=None, index=None, pid=None, input_ids=None, len2=None, target=None, **kw):
        given = {"index": index, "pid": pid, "input_ids": input_ids, "len2": len2, "target": target}
        kw.update({k: v for k, v in given.items() if v is not None})
        self._record(x, kw)
        return self.compute(x, labels if labels is not None else kw.get(self.opts.get("label_key", "labels")), kw)


class StrictProbe(Probe):
    def forward(self, x, labels=None):
        self._record(x, {})
        return self.compute(x, labels, {})


class CheckpointingProbe(LooseProbe):
    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, every_n_layers=1, offload=False):
        self.enabled.append({"kwargs": activation_checkpointing_kwargs, "every_n_layers": every_n_layers,
                             "offload": offload})


def build(options, args):
    opts = dict(options)
    features = int(opts.get("features", 3))
    cls = StrictProbe if opts.get("strict") else CheckpointingProbe if opts.get("checkpointing") else LooseProbe
    model = cls(features, opts)

    def compute_metrics(pred, compute_result=None):
        call = {"predictions": pred.predictions, "label_ids": pred.label_ids,
                "inputs": getattr(pred, "inputs", None), "losses": getattr(pred, "losses", None),
                "compute_result": compute_result}
        model.metric_calls.append(call)
        p = torch.as_tensor(pred.predictions[-1] if isinstance(pred.predictions, list) else pred.predictions)
        return {"mean_prediction": float(p.float().mean()), "has_inputs": float(call["inputs"] is not None)}

    return TaskBundle(model=model, train_dataset=Items(int(opts.get("n", 24)), features, 0, opts),
                      eval_dataset=Items(int(opts.get("n_eval", 10)), features, 1000, opts),
                      collate_fn=_collate, compute_metrics=compute_metrics)
