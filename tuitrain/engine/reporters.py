"""Experiment trackers (`report_to`): TensorBoard, Weights & Biases and MLflow.

`Reporters.build(args, task, run_dir, run_name)` imports the trackers the preset asks for
(a missing package raises one `TuitrainError` line before any step); `report(event)` hands
each tracker every event the trainer writes to `metrics.jsonl` (rank 0 only); `close()`
ends them with the run's final state. Metric names follow transformers' integrations:
TensorBoard and W&B get `train/loss`, `eval/loss`, `test/loss` (its `rewrite_logs`), MLflow
gets the raw `loss`, `eval_loss` keys with the step.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import re
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

from tuitrain.config.integrations import TRACKERS, redacted, requested_trackers
from tuitrain.errors import TuitrainError

METRIC_EVENTS = ("train", "eval", "predict", "summary")
_NOT_METRICS = ("kind", "t", "step", "v")
_MLFLOW_BAD_CHARS = re.compile(r"[^0-9A-Za-z_\-. :/]")
_END_STATES = ("finished", "stopped", "failed", "diverged")


def _require(tracker: str, module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        pip = TRACKERS[tracker][1]
        raise TuitrainError(f"report_to: \"{tracker}\" needs the package {pip}, which is not installed "
                            f"(pip install {pip})") from None


def numeric_fields(event: dict) -> dict[str, float]:
    """The event's metrics: numbers only (bools and None left out), bookkeeping keys dropped."""
    return {k: v for k, v in event.items() if k not in _NOT_METRICS and isinstance(v, (int, float))
            and not isinstance(v, bool)}


def rewrite_logs(metrics: dict[str, float]) -> dict[str, float]:
    """transformers' names: `eval_x` → `eval/x`, `test_x` → `test/x`, anything else → `train/x`."""
    out = {}
    for key, value in metrics.items():
        if key.startswith("eval_"):
            out["eval/" + key[5:]] = value
        elif key.startswith("test_"):
            out["test/" + key[5:]] = value
        else:
            out["train/" + key] = value
    return out


def tracker_config(args: Any, task: Any) -> dict[str, Any]:
    """The run's arguments for a tracker's config / params, with the Hub token masked as HF does."""
    config = redacted(args.as_dict())
    config["task"] = getattr(task, "name", None)
    config.update({f"task.{k}": v for k, v in (getattr(task, "options", None) or {}).items()})
    return config


class Tracker:
    """One tracker: `open(start_event)`, `log(event)`, `close(state)`; `name` for messages."""

    name = ""

    def __init__(self, config: dict[str, Any], run_dir: Path, run_name: str) -> None:
        self.config, self.run_dir, self.run_name = config, run_dir, run_name
        self.opened = False

    def open(self, start: dict) -> None:
        raise NotImplementedError

    def log(self, event: dict) -> None:
        raise NotImplementedError

    def close(self, state: str) -> None:
        raise NotImplementedError


class TensorBoardTracker(Tracker):
    """`SummaryWriter` scalars per metric event, samples as text; HF's `TensorBoardCallback`.

    A run that continues from step N (a resume, a rewind) writes into the log folder of its
    earlier segments with `purge_step=N+1`, so TensorBoard drops what that folder holds past
    N: it shows the line the run follows, not the one a rewind abandoned."""

    name = "tensorboard"

    def __init__(self, config, run_dir, run_name, logging_dir: str | None = None) -> None:
        super().__init__(config, run_dir, run_name)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            SummaryWriter = _require("tensorboard", "tensorboardX").SummaryWriter
        self._writer_cls = SummaryWriter
        self.logging_dir = logging_dir
        self.log_dir: Path | None = None
        self.writer = None

    def _log_dir(self, logging_dir: str | None, continuing: bool) -> Path:
        chosen = logging_dir or os.environ.get("TENSORBOARD_LOGGING_DIR")
        if chosen:
            path = Path(os.path.expanduser(chosen))
            return path if path.is_absolute() else self.run_dir / path
        earlier = [p for p in (self.run_dir / "runs").glob("*") if p.is_dir()] if continuing else []
        if earlier:  # the folder of the segment this one continues
            return max(earlier, key=lambda p: p.stat().st_mtime)
        stamp = datetime.now().strftime("%b%d_%H-%M-%S")
        return self.run_dir / "runs" / f"{stamp}_{socket.gethostname()}"

    def open(self, start: dict) -> None:
        step = start.get("step") if type(start.get("step")) is int else 0
        self.log_dir = self._log_dir(self.logging_dir, step > 0)
        extra = {"purge_step": step + 1} if step > 0 else {}
        self.writer = self._writer_cls(log_dir=str(self.log_dir), **extra)
        self.writer.add_text("args", json.dumps(self.config, indent=2, sort_keys=True, default=str))

    def log(self, event: dict) -> None:
        step = event.get("step")
        if event["kind"] in METRIC_EVENTS:
            for key, value in rewrite_logs(numeric_fields(event)).items():
                self.writer.add_scalar(key, value, step)
        elif event["kind"] == "sample":
            self.writer.add_text("sample", str(event.get("text", "")), step)
        else:
            return
        self.writer.flush()

    def close(self, state: str) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class WandbTracker(Tracker):
    """`wandb.init` at the start, `wandb.log` per metric event with `train/global_step` as the
    x-axis (HF's `WandbCallback`), `wandb.finish` with the exit code at the end."""

    name = "wandb"

    def __init__(self, config, run_dir, run_name) -> None:
        super().__init__(config, run_dir, run_name)
        self.wandb = _require("wandb", "wandb")

    def open(self, start: dict) -> None:
        kwargs: dict[str, Any] = {"project": os.environ.get("WANDB_PROJECT", "tuitrain"), "name": self.run_name,
                                  "config": self.config}
        if not os.environ.get("WANDB_DIR"):
            kwargs["dir"] = str(self.run_dir)  # wandb's files stay with the run, not in the cwd
        self.wandb.init(**kwargs)
        define = getattr(self.wandb, "define_metric", None)
        if define is not None:
            define("train/global_step")
            define("*", step_metric="train/global_step", step_sync=True)

    def log(self, event: dict) -> None:
        step = event.get("step")
        if event["kind"] in METRIC_EVENTS:
            data: dict[str, Any] = rewrite_logs(numeric_fields(event))
        elif event["kind"] == "sample":
            data = {"sample": str(event.get("text", ""))}
        else:
            return
        self.wandb.log({**data, "train/global_step": step})

    def close(self, state: str) -> None:
        self.wandb.finish(exit_code=1 if state == "failed" else 0)


class MLflowTracker(Tracker):
    """`mlflow.start_run` + `log_params` at the start, `log_metrics(step=…)` per metric event,
    `end_run` with the run's status (HF's `MLflowCallback`; MLFLOW_* variables apply)."""

    name = "mlflow"
    _STATUS = {"finished": "FINISHED", "stopped": "KILLED", "failed": "FAILED"}

    def __init__(self, config, run_dir, run_name) -> None:
        super().__init__(config, run_dir, run_name)
        self.mlflow = _require("mlflow", "mlflow")
        self._own_run = False
        try:
            self._async = "synchronous" in inspect.signature(self.mlflow.log_metrics).parameters
        except (TypeError, ValueError):
            self._async = False

    def _limits(self) -> tuple[int, int]:
        validation = getattr(getattr(self.mlflow, "utils", None), "validation", None)
        return (int(getattr(validation, "MAX_PARAM_VAL_LENGTH", 500)),
                int(getattr(validation, "MAX_PARAMS_TAGS_PER_BATCH", 100)))

    def open(self, start: dict) -> None:
        if self.mlflow.active_run() is None:
            self.mlflow.start_run(run_name=self.run_name)
            self._own_run = True
        max_len, batch = self._limits()
        params = [(k, v) for k, v in self.config.items() if len(str(v)) <= max_len]
        for i in range(0, len(params), batch):
            self.mlflow.log_params(dict(params[i:i + batch]))

    def log(self, event: dict) -> None:
        if event["kind"] not in METRIC_EVENTS:
            return
        metrics = {_MLFLOW_BAD_CHARS.sub("_", k): float(v) for k, v in numeric_fields(event).items()}
        extra = {"synchronous": False} if self._async else {}
        self.mlflow.log_metrics(metrics, step=event.get("step"), **extra)

    def close(self, state: str) -> None:
        if self._own_run and self.mlflow.active_run() is not None:
            self.mlflow.end_run(status=self._STATUS.get(state, "FINISHED"))
        self._own_run = False


class Reporters:
    """The trackers of one run; a tracker that raises is dropped with one message, never the run."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers
        self.state = "failed"  # until a final status event says otherwise

    @classmethod
    def build(cls, args: Any, task: Any, run_dir: Path, run_name: str) -> "Reporters":
        """Import every requested tracker now, so a missing package stops the run before step 1."""
        config = tracker_config(args, task)
        trackers: list[Tracker] = []
        for name in requested_trackers(args.report_to):
            if name == "tensorboard":
                trackers.append(TensorBoardTracker(config, run_dir, run_name, args.logging_dir))
            elif name == "wandb":
                trackers.append(WandbTracker(config, run_dir, run_name))
            elif name == "mlflow":
                trackers.append(MLflowTracker(config, run_dir, run_name))
        return cls(trackers)

    def report(self, event: dict) -> list[str]:
        """Give `event` to every tracker; returns one line per tracker that failed (now dropped)."""
        kind = event.get("kind")
        if kind == "status" and event.get("state") in _END_STATES:
            self.state = event["state"]
        failures = []
        for tracker in list(self.trackers):
            try:
                if kind == "start" and not tracker.opened:
                    tracker.opened = True
                    tracker.open(event)
                elif tracker.opened:
                    tracker.log(event)
            except Exception as exc:  # noqa: BLE001 - a tracker's outage must not stop training
                self.trackers.remove(tracker)
                failures.append(f"report_to {tracker.name}: {type(exc).__name__}: {exc}".splitlines()[0]
                                + " (no more reports to it in this run)")
                self._close_one(tracker)
        return failures

    def _close_one(self, tracker: Tracker) -> None:
        if tracker.opened:
            tracker.opened = False
            try:
                tracker.close(self.state)
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def close(self) -> None:
        """End every opened tracker with the run's final state; safe to call twice."""
        for tracker in self.trackers:
            self._close_one(tracker)
