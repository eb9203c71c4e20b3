"""The best metric so far, and early stopping (HF's EarlyStoppingCallback semantics)."""

from __future__ import annotations

from types import SimpleNamespace

from tuitrain.errors import TuitrainError


class BestTracker:
    """Follows `metric_for_best_model` across evaluations.

    `update(metrics, step)` records an evaluation and returns True when it is the new best.
    Early stopping counts evaluations that fail to beat the best by more than
    `early_stopping_threshold`; `should_stop` turns True after `early_stopping_patience`.
    """

    def __init__(self, args: SimpleNamespace) -> None:
        name = getattr(args, "metric_for_best_model", None) or "loss"
        self.metric = name if name.startswith("eval_") else f"eval_{name}"
        greater = getattr(args, "greater_is_better", None)
        self.greater_is_better = bool(greater) if greater is not None else not self.metric.endswith("loss")
        self.patience = getattr(args, "early_stopping_patience", None)
        self.threshold = float(getattr(args, "early_stopping_threshold", 0.0) or 0.0)
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.best_model_checkpoint: str | None = None
        self.patience_counter = 0

    def value(self, metrics: dict) -> float:
        """The tracked metric out of an evaluation's metrics."""
        if self.metric not in metrics:
            raise TuitrainError(f"logging.metric_for_best_model: evaluation gave no {self.metric!r} "
                                f"(it gave {', '.join(sorted(metrics))})")
        return float(metrics[self.metric])

    def _better(self, value: float, than: float, margin: float = 0.0) -> bool:
        if self.greater_is_better:
            return value > than and value - than > margin
        return value < than and than - value > margin

    def update(self, metrics: dict, step: int) -> bool:
        """Record an evaluation; True when it is the new best."""
        value = self.value(metrics)
        if self.patience:
            if self.best_metric is None or self._better(value, self.best_metric, self.threshold):
                self.patience_counter = 0
            else:
                self.patience_counter += 1
        if self.best_metric is None or self._better(value, self.best_metric):
            self.best_metric, self.best_step = value, step
            return True
        return False

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
        """Restore from a checkpoint's trainer state."""
        self.best_metric = state.get("best_metric")
        self.best_step = state.get("best_step")
        self.best_model_checkpoint = state.get("best_model_checkpoint")
        self.patience_counter = int(state.get("patience_counter") or 0)
