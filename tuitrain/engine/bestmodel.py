"""The best metric so far and early stopping, with transformers' semantics.

As in HF's Trainer, a best model is tracked only when `metric_for_best_model` is set (the
preset rules set it to "loss" for load_best_model_at_end, reduce_lr_on_plateau and greedy):
`update` is HF's `_determine_best_metric`, `early_stopping_check` its
`EarlyStoppingCallback.on_evaluate` (run first, against the best before this evaluation).
The evaluation asked for by `eval_on_start` is neither.
"""

from __future__ import annotations

from typing import Any

from tuitrain.errors import TuitrainError

_SAVING = ("steps", "epoch", "best")  # save strategies under which HF records best_global_step


class BestTracker:
    """Follows `metric_for_best_model` across evaluations (inactive when it is not set)."""

    def __init__(self, args: Any) -> None:
        name = args.metric_for_best_model
        self.active = name is not None
        self.metric = None if name is None else (name if name.startswith("eval_") else f"eval_{name}")
        self.greater_is_better = bool(args.greater_is_better)
        self.records_step = args.save_strategy in _SAVING
        self.patience = args.early_stopping_patience
        self.threshold = float(args.early_stopping_threshold)
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.best_model_checkpoint: str | None = None  # the checkpoint folder's name
        self.patience_counter = 0

    def value(self, metrics: dict) -> float:
        """The tracked metric out of an evaluation's metrics."""
        if self.metric not in metrics:
            raise TuitrainError(f"logging.metric_for_best_model: evaluation gave no {self.metric!r} "
                                f"(it gave {', '.join(sorted(metrics))})")
        return float(metrics[self.metric])

    def _better(self, value: float, than: float) -> bool:
        return value > than if self.greater_is_better else value < than

    def early_stopping_check(self, metrics: dict) -> None:
        """Count an evaluation that did not beat the best by more than the threshold."""
        if not self.patience or not self.active:
            return
        value = self.value(metrics)
        if self.best_metric is None or (self._better(value, self.best_metric)
                                        and abs(value - self.best_metric) > self.threshold):
            self.patience_counter = 0
        else:
            self.patience_counter += 1

    def update(self, metrics: dict, step: int) -> bool:
        """Record an evaluation (after `early_stopping_check`); True when it is a new best."""
        if not self.active:
            return False
        value = self.value(metrics)
        best = self.best_metric
        if best is None:
            best = float("-inf") if self.greater_is_better else float("inf")
        if not self._better(value, best):
            return False
        self.best_metric = value
        if self.records_step:
            self.best_step = step
        return True

    @property
    def should_stop(self) -> bool:
        """Early stopping's verdict after the last evaluation."""
        return bool(self.patience) and self.patience_counter >= int(self.patience)

    def state_dict(self) -> dict:
        """JSON-safe state for the checkpoint."""
        return {"best_metric": self.best_metric, "best_step": self.best_step,
                "best_model_checkpoint": self.best_model_checkpoint,
                "patience_counter": self.patience_counter}

    def load_state_dict(self, state: dict) -> None:
        """Restore from a checkpoint's state."""
        self.best_metric = state.get("best_metric")
        self.best_step = state.get("best_step")
        self.best_model_checkpoint = state.get("best_model_checkpoint")
        self.patience_counter = int(state.get("patience_counter") or 0)
