"""Modular arithmetic `a ∘ b mod p` with a small transformer: the grokking task."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tuitrain.errors import TuitrainError

from .bundle import EvalPrediction, TaskBundle
from .gpt import GPT, GPTConfig
from .options import resolve_options

DEFAULTS = {
    "modulus": 97,
    "operation": "add",
    "train_fraction": 0.3,
    "n_layer": 2,
    "n_head": 4,
    "n_embd": 128,
    "dropout": 0.0,
}
OPERATIONS = ("add", "sub", "mul", "div")
# The train/held-out split is fixed so that runs with different seeds share it.
_SPLIT_SEED = 0


def equations(p: int, operation: str) -> tuple[torch.Tensor, torch.Tensor]:
    """All `(a, b)` pairs and their results `a ∘ b mod p` (division: b ≠ 0, via b^(p-2))."""
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    if operation == "div":
        keep = b != 0
        a, b = a[keep], b[keep]
        inv = torch.tensor([pow(int(x), p - 2, p) for x in range(p)])
        c = (a * inv[b]) % p
    else:
        c = {"add": a + b, "sub": a - b, "mul": a * b}[operation] % p
    return torch.stack([a, b], dim=1), c


class EquationDataset(torch.utils.data.Dataset):
    """Items `{"input_ids": [a, op, b, =], "labels": c}`."""

    def __init__(self, pairs: torch.Tensor, results: torch.Tensor, p: int):
        n = len(pairs)
        self.inputs = torch.stack(
            [pairs[:, 0], torch.full((n,), p), pairs[:, 1], torch.full((n,), p + 1)], dim=1
        )
        self.results = results

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.inputs[i], "labels": self.results[i]}


class ModularModel(nn.Module):
    """A GPT trunk whose answer is read at the `=` position, over the p residues."""

    def __init__(self, p: int, n_layer: int, n_head: int, n_embd: int, dropout: float):
        super().__init__()
        self.p = p
        self.gpt = GPT(GPTConfig(p + 2, 4, n_layer, n_head, n_embd, dropout, bias=True))

    def gradient_checkpointing_enable(self, kwargs: dict | None = None) -> None:
        self.gpt.gradient_checkpointing_enable(kwargs)

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        logits = self.gpt(input_ids)["logits"][:, -1, : self.p]
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = F.cross_entropy(logits.float(), labels)
        return out


def accuracy(pred: EvalPrediction) -> dict[str, float]:
    """Share of held-out equations answered right (predictions: logits or class ids)."""
    preds = torch.as_tensor(pred.predictions)
    labels = torch.as_tensor(pred.label_ids)
    if preds.dim() == labels.dim() + 1:
        preds = preds.argmax(dim=-1)
    if labels.numel() == 0:
        return {"accuracy": 0.0}
    return {"accuracy": (preds.reshape(-1) == labels.reshape(-1)).float().mean().item()}


def build(options: dict, args, ctx=None) -> TaskBundle:
    """The modular-arithmetic bundle; the eval set is the held-out pairs."""
    opts = resolve_options("modular", options, DEFAULTS)
    p = int(opts["modulus"])
    if p < 2:
        raise TuitrainError(f"task.options.modulus: {p} is too small (use a prime such as 97)")
    op = str(opts["operation"])
    if op not in OPERATIONS:
        raise TuitrainError(f"task.options.operation: {op!r} is not one of {', '.join(OPERATIONS)}")
    if op == "div" and any(p % d == 0 for d in range(2, int(p**0.5) + 1)):
        raise TuitrainError(f"task.options.modulus: division needs a prime modulus, {p} is not prime")
    frac = float(opts["train_fraction"])
    if not 0.0 < frac < 1.0:
        raise TuitrainError(f"task.options.train_fraction: {frac} is outside (0, 1)")
    pairs, results = equations(p, op)
    perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(_SPLIT_SEED))
    cut = max(1, int(len(pairs) * frac))
    tr, ev = perm[:cut], perm[cut:]
    model = ModularModel(p, int(opts["n_layer"]), int(opts["n_head"]), int(opts["n_embd"]), float(opts["dropout"]))
    return TaskBundle(
        model=model,
        train_dataset=EquationDataset(pairs[tr], results[tr], p),
        eval_dataset=EquationDataset(pairs[ev], results[ev], p),
        compute_metrics=accuracy,
        tokens_per_example=4,
    )
