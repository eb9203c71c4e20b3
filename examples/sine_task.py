"""A complete plug-in task: fit y = sin(x) with a small MLP.

Point a preset at it with `[task] name = "examples/sine_task.py:build"` (a path is
tried from the working directory, then beside the preset) or, when it is importable,
`name = "sine_task:build"`. `[task.options]` arrive as the `options` dict.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tuitrain.engine.tasks import TaskBundle


class SineNet(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))

    # The batch's keys are the forward's arguments; `labels` gives a loss.
    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        pred = self.net(x)
        out = {"logits": pred}
        if labels is not None:
            out["loss"] = nn.functional.mse_loss(pred, labels)
        return out


class SineData(torch.utils.data.Dataset):
    def __init__(self, n: int, offset: float) -> None:
        self.xs = [offset + 2 * math.pi * i / n for i in range(n)]

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int) -> dict:
        x = self.xs[i]
        return {"x": torch.tensor([x]), "labels": torch.tensor([math.sin(x)])}


def max_error(pred) -> dict[str, float]:
    """compute_metrics gets HF's EvalPrediction(predictions, label_ids, inputs)."""
    p, y = torch.as_tensor(pred.predictions), torch.as_tensor(pred.label_ids)
    return {"max_error": float((p - y).abs().max())}


def build(options: dict, args) -> TaskBundle:
    """The entry point: returns the model, the datasets and how to score them."""
    n = int(options.get("n_samples", 512))
    return TaskBundle(
        model=SineNet(int(options.get("hidden", 32))),
        train_dataset=SineData(n, 0.0),
        eval_dataset=SineData(n // 4, 0.01),
        compute_metrics=max_error,
    )
