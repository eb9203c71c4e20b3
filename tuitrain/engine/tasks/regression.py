"""A tiny MLP regression on synthetic data drawn from a fixed generator seed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tuitrain.errors import TuitrainError

from .bundle import EvalPrediction, TaskBundle
from .options import resolve_options

DEFAULTS = {"n_samples": 1024, "n_features": 8, "hidden": 32, "noise": 0.1}
_DATA_SEED = 0
EVAL_FRACTION = 0.2


def synthetic(n: int, d: int, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`y = x·w + 0.5·sin(2·x₀) + noise`, the same for every run."""
    gen = torch.Generator().manual_seed(_DATA_SEED)
    x = torch.randn(n, d, generator=gen)
    w = torch.randn(d, generator=gen) / d**0.5
    y = x @ w + 0.5 * torch.sin(2 * x[:, 0]) + noise * torch.randn(n, generator=gen)
    return x, y


class RegressionDataset(torch.utils.data.Dataset):
    """Items `{"x": FloatTensor[d], "labels": FloatTensor[]}`."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "labels": self.y[i]}


class MLP(nn.Module):
    """Two hidden layers; `forward(x, labels=None)` with an MSE loss."""

    def __init__(self, d: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        pred = self.net(x).squeeze(-1)
        out = {"logits": pred}
        if labels is not None:
            out["loss"] = F.mse_loss(pred.float(), labels.float())
        return out


def metrics(pred: EvalPrediction) -> dict[str, float]:
    """Mean squared error and R² over the eval set."""
    p = torch.as_tensor(pred.predictions).reshape(-1).double()
    y = torch.as_tensor(pred.label_ids).reshape(-1).double()
    mse = torch.mean((p - y) ** 2).item()
    var = torch.var(y, unbiased=False).item()
    return {"mse": mse, "r2": 1.0 - mse / var if var > 0 else 0.0}


def build(options: dict, args, ctx=None) -> TaskBundle:
    """The regression bundle: 80 % train, 20 % eval."""
    opts = resolve_options("regression", options, DEFAULTS)
    n, d, h = int(opts["n_samples"]), int(opts["n_features"]), int(opts["hidden"])
    if n < 5 or d < 1 or h < 1:
        raise TuitrainError("task.options: regression needs n_samples >= 5, n_features >= 1, hidden >= 1")
    x, y = synthetic(n, d, float(opts["noise"]))
    cut = n - max(1, int(n * EVAL_FRACTION))
    return TaskBundle(
        model=MLP(d, h),
        train_dataset=RegressionDataset(x[:cut], y[:cut]),
        eval_dataset=RegressionDataset(x[cut:], y[cut:]),
        compute_metrics=metrics,
    )
