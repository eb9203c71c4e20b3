"""What a training run knows besides weights, optimizer, schedule and RNG: `TrainState`.

The step and epoch, the log history, the best model, the totals of the end-of-training
summary and the logging window (the loss summed on the device since the last log). A
checkpoint keeps it: `state_dict()` and `load_state_dict()` sit side by side here, and
`hf_state()` gives the fields of transformers' `TrainerState` for `trainer_state.json`.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from .bestmodel import BestTracker
from .evaluate import batch_rows


class LogWindow:
    """The steps since the last log. Each micro-batch's loss stays a tensor on the device in a
    list (no kernel, no host sync per step); `fold()` sums them on the host at a logging step,
    with HF's `logging_nan_inf_filter`: a non-finite loss adds the window's running mean."""

    FOLD_EVERY = 4096  # a longer window is folded early, to bound the list

    def __init__(self, nan_filter: bool) -> None:
        self.nan_filter = nan_filter
        self.reset()

    def reset(self) -> None:
        # NaN/inf losses among the `folded` ones since the last log (the divergence stop reads them)
        self.nonfinite = self.folded = 0
        self.losses: list[torch.Tensor] = []
        self.updates: list[int] = []  # updates of the window done before each loss
        self.sum = 0.0  # losses folded so far (and a resumed window's)
        self.steps = self.samples = self.tokens = 0
        self.t0 = time.perf_counter()
        self.grad_norm: torch.Tensor | None = None  # the last update's
        self.lr: Any = None  # the learning rate the last update ran at

    def add_loss(self, loss: torch.Tensor) -> None:
        self.losses.append(loss)
        self.updates.append(self.steps)
        if len(self.losses) >= self.FOLD_EVERY:
            self.fold()

    def fold(self) -> float:
        """The window's loss sum, as HF's running `tr_loss` adds it up (one host sync)."""
        if self.losses:
            total = self.sum
            for value, done in zip(torch.stack(self.losses).double().tolist(), self.updates):
                self.nonfinite += not math.isfinite(value)
                self.folded += 1
                total += value if not self.nan_filter or math.isfinite(value) else total / (done + 1)
            self.sum = total
            self.losses.clear()
            self.updates.clear()
        return self.sum

    def state_dict(self) -> dict:
        return {"loss": self.fold(), "steps": self.steps, "samples": self.samples, "tokens": self.tokens}

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        self.sum = float(state.get("loss", 0.0))
        self.steps = int(state.get("steps", 0))
        self.samples = int(state.get("samples", 0))
        self.tokens = int(state.get("tokens", 0))


class TrainState:
    """Step, epoch (HF's: fraction of the epoch's micro-batches done), history, best, totals."""

    def __init__(self, args: Any, flos_per_token: int = 0, tokens_per_example: int | None = None,
                 main_input: str = "input_ids") -> None:
        self.count_tokens_seen = args.include_num_input_tokens_seen
        self.flos_per_token, self.tokens_per_example, self.main_input = flos_per_token, tokens_per_example, main_input
        self.global_step = 0
        self.epoch = 0.0
        self.log_history: list[dict] = []
        self.best = BestTracker(args)
        self.window = LogWindow(args.logging_nan_inf_filter)
        self.total_flos = 0.0
        self.tokens_seen = 0  # include_num_input_tokens_seen, on this rank
        self.loss_total = 0.0  # the logged windows' loss sums, for train_loss
        self.loss_steps = 0
        self.restore_callbacks = bool(args.restore_callback_states_from_checkpoint)

    def count(self, batch: dict) -> None:
        """Samples and tokens for throughput, and HF's flos and num_input_tokens_seen (host-side
        counts of a micro-batch still on the CPU)."""
        window, rows = self.window, batch_rows(batch)
        window.samples += rows
        ids = batch.get(self.main_input)
        numel = int(ids.numel()) if torch.is_tensor(ids) else 0
        if self.flos_per_token:
            self.total_flos += self.flos_per_token * numel
        if self.count_tokens_seen == "all":
            self.tokens_seen += numel
        elif self.count_tokens_seen == "non_padding":
            mask = batch.get("attention_mask")
            self.tokens_seen += int(mask.sum()) if torch.is_tensor(mask) else numel
        if self.tokens_per_example:
            window.tokens += int(self.tokens_per_example) * rows
        else:
            ids = batch.get("input_ids")
            window.tokens += int(ids.numel()) if torch.is_tensor(ids) else 0

    def summary(self, total_steps: int, examples: float, steps_run: int, runtime: float) -> dict:
        """HF's end-of-training log: train_runtime, the rates, total_flos and train_loss (the mean
        step loss over every step of this session's windows)."""
        runtime = max(runtime, 1e-9)
        samples = examples * steps_run / max(total_steps, 1)  # the share of the schedule this session ran
        train_loss = (self.loss_total + self.window.fold()) / max(self.loss_steps + self.window.steps, 0.001)
        return {"step": self.global_step, "epoch": self.epoch, "train_runtime": round(runtime, 4),
                "train_samples_per_second": round(samples / runtime, 3),
                "train_steps_per_second": round(steps_run / runtime, 3), "total_flos": float(self.total_flos),
                "train_loss": train_loss}

    def state_dict(self) -> dict:
        """JSON-safe state for `tuitrain_state.json`."""
        return {"global_step": self.global_step, "epoch": self.epoch, "best": self.best.state_dict(),
                "window": self.window.state_dict(), "total_flos": self.total_flos,
                "num_input_tokens_seen": self.tokens_seen}

    def load_state_dict(self, state: dict, hf_state: dict) -> None:
        """Restore from a checkpoint's `tuitrain_state.json` and `trainer_state.json` contents."""
        self.global_step = int(state["global_step"])
        self.epoch = float(state.get("epoch") or 0.0)
        self.log_history = list(hf_state.get("log_history") or [])
        best = dict(state.get("best") or {})
        if not self.restore_callbacks:  # as HF: early stopping's patience starts afresh on resume
            best["patience_counter"] = 0
        self.best.load_state_dict(best)
        self.window.load_state_dict(state.get("window") or {})
        self.total_flos = float(state.get("total_flos") or hf_state.get("total_flos") or 0.0)
        self.tokens_seen = int(state.get("num_input_tokens_seen") or 0)

    def hf_state(self, args: Any, plan: Any, run_dir: Any, resolve: Any) -> dict:
        """transformers' `TrainerState` fields (exactly those: `load_from_json` refuses others)."""
        best = self.best
        callbacks: dict[str, Any] = {"TrainerControl": {"args": {
            "should_training_stop": False, "should_epoch_stop": False, "should_save": True,
            "should_evaluate": False, "should_log": False}, "attributes": {}}}
        if best.patience:
            callbacks["EarlyStoppingCallback"] = {
                "args": {"early_stopping_patience": best.patience, "early_stopping_threshold": best.threshold},
                "attributes": {"early_stopping_patience_counter": best.patience_counter}}
        return {
            "epoch": self.epoch, "global_step": self.global_step, "max_steps": plan.total_steps,
            "logging_steps": resolve(args.logging_steps) or 500, "eval_steps": resolve(args.eval_steps) or 500,
            "save_steps": resolve(args.save_steps) or 500, "train_batch_size": args.per_device_train_batch_size,
            "num_train_epochs": plan.num_epochs, "num_input_tokens_seen": self.tokens_seen,
            "total_flos": self.total_flos, "log_history": self.log_history,
            "best_metric": best.best_metric, "best_global_step": best.best_step,
            "best_model_checkpoint": str(run_dir / best.best_model_checkpoint) if best.best_model_checkpoint else None,
            "is_local_process_zero": True, "is_world_process_zero": True, "is_hyper_param_search": False,
            "trial_name": None, "trial_params": None, "stateful_callbacks": callbacks,
        }
