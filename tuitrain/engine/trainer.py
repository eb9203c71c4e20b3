"""The training loop: read it top to bottom like nanoGPT's.

`Trainer(preset, run_dir, resume_from=None).train()` runs the phases (train, eval,
predict), writes events to `metrics.jsonl` (rank 0), checkpoints, and returns an exit
code. The only host syncs are at logging steps, evaluations and checkpoints.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
import time
import traceback
from pathlib import Path

import torch

from tuitrain.config.integrations import redacted
from tuitrain.config.steps import plan_steps, resolve_interval
from tuitrain.errors import TuitrainError

from . import autobatch
from . import checkpoint as ckpt
from . import rng as rng_mod
from .bestmodel import BestTracker
from .data import build_eval_loader, build_train_loader
from .distributed import all_reduce_mean, barrier, init_distributed, shutdown, window_mean, wrap_model
from .evaluate import evaluate, generate_sample
from .generation import load_generation_config
from .integrations import Integrations
from .events import SAVE_FAILED, EventWriter, exit_code
from .losses import count_items, label_key, summed_loss
from .optim import build_optimizer
from .past import PastState
from .amp import Precision
from .progress import ProgressLine
from .resume_check import check_resume_config
from .resume_field import align_lr_to_schedule, checkpoint_from_field, naming_field
from .sched import build_scheduler
from .seeding import set_seed
from .signals import StopRequest
from .tasks import build_task
from .telemetry_mem import memory_fields


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


def _batch_size(batch: dict) -> int:
    first = next((v for v in batch.values() if torch.is_tensor(v) and v.dim()), None)
    return int(first.shape[0]) if first is not None else 1


class Trainer:
    """Builds the task, optimizer, scheduler and loaders from a `Preset`; `train()` runs it."""

    def __init__(self, preset, run_dir, resume_from: str | None = None) -> None:
        self.preset, self.args = preset, preset.args
        args = self.args
        self.run_dir = Path(run_dir)
        self.resume_from = resume_from
        self.ctx = init_distributed(args)
        self.device = self.ctx.device
        set_seed(int(getattr(args, "seed", 42)), bool(getattr(args, "full_determinism", False)))
        self.events = EventWriter(self.run_dir, enabled=self.ctx.is_main)
        if self.ctx.is_main:
            # A trainer killed mid-save leaves `.checkpoint-N.tmp-<pid>/`; never listed, removed here.
            ckpt.clean_stale_tmp(self.run_dir)
        self.stop = StopRequest()
        self.generation = load_generation_config(getattr(args, "generation_config", None))
        # report_to trackers and push_to_hub: imported now, so a missing package fails before step 1
        self.integrations = Integrations(args, preset.task, self.run_dir, getattr(args, "run_name", None)
                                         or self.run_dir.name, self.ctx.is_main, self._emit)

        self.bundle = build_task(preset.task, args, self.ctx)
        model = self.bundle.model
        if getattr(args, "gradient_checkpointing", False):
            enable = getattr(model, "gradient_checkpointing_enable", None)
            if enable is None:
                raise TuitrainError("precision.gradient_checkpointing: this task's model does not "
                                    "support gradient checkpointing (set it to false)")
            enable(dict(getattr(args, "gradient_checkpointing_kwargs", None) or {}))
        self.raw_model = model.to(self.device)
        self.precision = Precision(args, self.device)
        self.plan = plan_steps(args, len(self.bundle.train_dataset), self.ctx.world_size)
        self.optimizer = build_optimizer(self.raw_model, args)
        self.scheduler = build_scheduler(self.optimizer, args, self.plan.total_steps, self.plan.warmup_steps)
        self.plateau = isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        self.model = wrap_model(self.raw_model, args, self.ctx)
        if getattr(args, "torch_compile", False):
            self.model = torch.compile(self.model, backend=getattr(args, "torch_compile_backend", None) or "inductor",
                                       mode=getattr(args, "torch_compile_mode", None))
        self.label_key = label_key(args)
        self.smoothing = float(getattr(args, "label_smoothing_factor", 0.0) or 0.0)
        self.past = PastState(getattr(args, "past_index", -1))
        self.best = BestTracker(args)

        self.global_step = 0
        self.log_history: list[dict] = []
        self.window_loss = torch.zeros((), device=self.device)  # the loss summed over the logging window
        self._reset_window()
        self._pending_rng = None
        if resume_from:
            self._resume(resume_from)
        elif getattr(args, "resume_from_checkpoint", None):  # a new run from another run's checkpoint
            source = checkpoint_from_field(args.resume_from_checkpoint)
            self.resume_from = str(source)
            with naming_field(source):
                self._resume(self.resume_from)

    # -- resume -----------------------------------------------------------------------------

    def _checkpoint_path(self, name: str) -> Path:
        path = Path(name)
        return path if path.is_absolute() else self.run_dir / path

    def _resume(self, name: str) -> None:
        path = self._checkpoint_path(name)
        state_file = path / "trainer_state.json"
        if not state_file.is_file():
            raise TuitrainError(f"{path}: not a complete checkpoint (no trainer_state.json)")
        try:
            saved = json.loads(state_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ckpt.CheckpointLoadError(f"checkpoint {path} refused: trainer_state.json is unreadable "
                                           f"({exc}); nothing was loaded") from None
        if not isinstance(saved, dict) or type(saved.get("global_step")) is not int:
            raise ckpt.CheckpointLoadError(f"checkpoint {path} refused: trainer_state.json has no integer "
                                           "global_step; nothing was loaded")
        self.resume_changes = check_resume_config(saved.get("config"), redacted(self.preset.values()), path.name)
        state = ckpt.load_checkpoint(path, self.raw_model, self.optimizer, self.scheduler,
                                     self.precision.scaler, restore_rng=False)
        align_lr_to_schedule(self.optimizer, self.scheduler)  # a changed max_steps changes the schedule
        self.global_step = int(state["global_step"])
        self.log_history = list(state.get("log_history") or [])
        self.best.load_state_dict(state.get("best") or {})
        window = state.get("window") or {}
        self._reset_window()
        self.window_loss.fill_(float(window.get("loss", 0.0)))
        self.window_steps = int(window.get("steps", 0))
        self.window_samples = int(window.get("samples", 0))
        self.window_tokens = int(window.get("tokens", 0))
        self._pending_rng = state["rng_state"]

    # -- events -----------------------------------------------------------------------------

    def _reset_window(self) -> None:
        self.window_loss.zero_()  # in place: cheaper than a new tensor at every logging step
        self.window_steps = self.window_samples = self.window_tokens = 0
        self.window_t0 = time.perf_counter()
        self.grad_norm = None

    def _emit(self, kind: str, **fields) -> None:
        event = self.events.emit(kind, **fields)
        if event is not None:
            self.integrations.on_event(event)
        if event is not None and kind in ("train", "eval"):
            self.log_history.append({k: v for k, v in event.items() if k not in ("kind", "t")})

    def _epoch_float(self) -> float:
        return round(self.global_step / max(self.plan.updates_per_epoch, 1), 4)

    # -- the loop ---------------------------------------------------------------------------

    def train(self) -> int:
        """Run every phase; returns the exit code (0 finished or stopped, 1 failed)."""
        args = self.args
        self.stop.install()
        state = "finished"
        try:
            self._emit("start", run=self.run_dir.name, world_size=self.ctx.world_size,
                       max_steps=self.plan.total_steps, resumed_from=self.resume_from,
                       step=self.global_step, config=redacted(self.preset.values()))
            self._emit("status", state="running", error=None)
            do_eval, do_predict = bool(getattr(args, "do_eval", False)), bool(getattr(args, "do_predict", False))
            periodic_eval = (getattr(args, "eval_strategy", "no") or "no") != "no"
            # HF: do_eval is implied by an eval strategy; with no phase asked for, train.
            do_train = bool(getattr(args, "do_train", False)) or not (do_predict or (do_eval and not periodic_eval))
            if do_train and autobatch.train_loop(self) == "stopped":
                state = "stopped"
            elif do_eval and (not do_train or not periodic_eval):
                self._evaluate(standalone=not do_train)
            if state == "finished" and do_predict:
                self._predict()
            self.integrations.finish(state, self.raw_model)
            self._emit("status", state=state, error=None)
            return exit_code(state, self.events)
        except autobatch.SmallerBatchNeeded:
            raise  # the caller (train_with_auto_batch) restarts with a smaller batch
        except Exception as exc:  # noqa: BLE001 - the run records every failure
            line = exc.one_line() if isinstance(exc, TuitrainError) else f"{type(exc).__name__}: {exc}"
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            self.integrations.finish("failed")
            self._emit("status", state="failed", error=line.splitlines()[0] if line else type(exc).__name__)
            return 1
        finally:
            self.stop.uninstall()
            self.integrations.close()

    def _train_loop(self) -> str:
        """Optimizer steps until max_steps, early stopping or a stop request."""
        args, plan = self.args, self.plan
        total, per_epoch, accum = plan.total_steps, plan.updates_per_epoch, int(args.gradient_accumulation_steps)
        progress = ProgressLine(total, self.global_step, enabled=self.ctx.is_main)
        if getattr(args, "eval_on_start", False) and self.global_step == 0:
            self._evaluate()
        profiler = self._profiler()
        epoch = self.global_step // per_epoch
        done_in_epoch = self.global_step % per_epoch
        self.model.train()
        with profiler:
            while self.global_step < total:
                it = self._epoch_iterator(epoch, skip_batches=done_in_epoch * accum)
                self.past.reset()
                if self._pending_rng is not None:  # resumed: continue the RNG stream of step N
                    rng_mod.restore_rng_state(self._pending_rng)
                    self._pending_rng = None
                batches_left = plan.batches_per_epoch - done_in_epoch * accum
                while done_in_epoch < per_epoch and self.global_step < total:
                    window = [b for _, b in zip(range(min(accum, batches_left)), it)]
                    if not window:
                        break
                    batches_left -= len(window)
                    self._optimizer_step(window)
                    self.global_step += 1
                    done_in_epoch += 1
                    if profiler is not contextlib.nullcontext:
                        getattr(profiler, "step", lambda: None)()
                    epoch_end = done_in_epoch >= per_epoch or batches_left <= 0
                    verdict = self._after_step(progress, epoch, epoch_end)
                    if verdict:
                        return verdict
                epoch += 1
                done_in_epoch = 0
        return "finished"

    def _epoch_iterator(self, epoch: int, skip_batches: int):
        """The loader of an epoch, built without drawing from the global RNG, so a resumed run
        and an uninterrupted one see the same dropout masks."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            loader = build_train_loader(self.bundle, self.args, self.ctx, epoch, skip_batches=skip_batches)
            it = iter(loader)
            first = next(it, None)  # loaders start (and draw worker seeds) lazily, on the first batch
        return itertools.chain([first], it) if first is not None else iter(())

    def _optimizer_step(self, window: list[dict]) -> None:
        """Forward/backward every micro-batch of the window, clip, step, schedule."""
        items = [count_items(b, self.label_key) for b in window]
        window_items = max(sum(items), 1)
        for i, (batch, n) in enumerate(zip(window, items)):
            self.window_samples += _batch_size(batch)
            self.window_tokens += self._tokens(batch)
            batch = _to_device(batch, self.device)
            last = i == len(window) - 1
            no_sync = getattr(self.model, "no_sync", None)
            with (no_sync() if no_sync is not None and not last else contextlib.nullcontext()):
                with self.precision.train_autocast():
                    outputs = self.model(**self.past.feed(batch))
                    loss = summed_loss(outputs, batch.get(self.label_key), n, self.smoothing) / window_items
                self.past.keep(outputs)
                self.precision.backward(loss)
            self.window_loss += loss.detach()
        max_norm = float(getattr(self.args, "max_grad_norm", 0.0) or 0.0)
        if max_norm > 0:
            self.precision.unscale(self.optimizer)
            self.grad_norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), max_norm)
        self.precision.optimizer_step(self.optimizer)
        if not self.plateau:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.window_steps += 1

    def _tokens(self, batch: dict) -> int:
        if self.bundle.tokens_per_example:
            return int(self.bundle.tokens_per_example) * _batch_size(batch)
        ids = batch.get("input_ids")
        return int(ids.numel()) if torch.is_tensor(ids) else 0

    # -- logging, evaluation, saving --------------------------------------------------------

    def _due(self, strategy_field: str, steps_field: str, epoch_end: bool) -> bool:
        strategy = getattr(self.args, strategy_field, "no") or "no"
        if strategy == "steps":
            every = resolve_interval(getattr(self.args, steps_field, None), self.plan.total_steps)
            return bool(every) and self.global_step % every == 0
        return strategy == "epoch" and epoch_end

    def _after_step(self, progress: ProgressLine, epoch: int, epoch_end: bool) -> str | None:
        """Log, evaluate, save and decide whether to stop, in HF's order."""
        args, step = self.args, self.global_step
        last = step >= self.plan.total_steps
        if (self._due("logging_strategy", "logging_steps", epoch_end)
                or (step == 1 and getattr(args, "logging_first_step", False))
                or (last and getattr(args, "logging_strategy", "no") != "no" and self.window_steps)):
            self._log(progress)
        improved = False
        if self._due("eval_strategy", "eval_steps", epoch_end):
            delay = float(getattr(args, "eval_delay", 0) or 0)
            position = epoch + 1 if getattr(args, "eval_strategy", "no") == "epoch" else step
            if position >= delay:
                improved = self._evaluate()
        sample_every = int(getattr(args, "sample_every", 0) or 0)
        if sample_every and step % sample_every == 0:
            self._sample()
        empty_every = int(getattr(args, "torch_empty_cache_steps", None) or 0)
        if empty_every and step % empty_every == 0 and self.device.type == "cuda":
            torch.cuda.empty_cache()
        save_strategy = getattr(args, "save_strategy", "no") or "no"
        stop_early = self.best.should_stop
        stopping = self.stop.agreed(self.ctx)  # every rank decides alike, before any collective below
        if (self._due("save_strategy", "save_steps", epoch_end) or (save_strategy == "best" and improved)
                or (last and save_strategy not in ("no", "best")) or stopping):
            self._save()
        if stopping:
            progress.message(f"{self.stop.signal_name}: stopped at step {step}")
            return "stopped"
        if stop_early:
            progress.message(f"early stopping at step {step}")
        if last or stop_early:
            if getattr(args, "load_best_model_at_end", False) and self.best.best_model_checkpoint:
                path = self.run_dir / self.best.best_model_checkpoint
                if path.is_dir():
                    ckpt.load_checkpoint(path, self.raw_model, restore_rng=False)
                    progress.message(f"loaded the best model from {path.name}")
            return "finished"
        return None

    def _log(self, progress: ProgressLine) -> None:
        loss_sum = self.window_loss
        if self.ctx.world_size > 1:
            loss_sum = all_reduce_mean(loss_sum, self.ctx)
        elapsed = max(time.perf_counter() - self.window_t0, 1e-9)
        # The mean is taken on the host: one tensor op less per logging step.
        loss = float(loss_sum.item()) / max(self.window_steps, 1)
        fields = {"step": self.global_step, "epoch": self._epoch_float(), "loss": loss,
                  "learning_rate": float(self.optimizer.param_groups[0]["lr"])}
        if self.grad_norm is not None:
            fields["grad_norm"] = float(self.grad_norm.item())
        fields["samples_per_second"] = round(self.window_samples * self.ctx.world_size / elapsed, 3)
        if self.window_tokens:
            fields["tokens_per_second"] = round(self.window_tokens * self.ctx.world_size / elapsed, 3)
        fields.update(memory_fields(self.device, peak=not getattr(self.args, "skip_memory_metrics", True)))
        self._emit("train", **fields)
        progress.update(self.global_step, fields["loss"], fields["learning_rate"],
                        fields["samples_per_second"], fields.get("tokens_per_second"))
        self._reset_window()

    def _eval_loader(self):
        if self.bundle.eval_dataset is None:
            raise TuitrainError("evaluation: this task has no eval dataset (set eval_strategy = \"no\")")
        return build_eval_loader(self.bundle, self.args, self.ctx)

    def _sum_across(self, loss_sum: torch.Tensor, n_items: int):
        if self.ctx.world_size == 1:
            return loss_sum, n_items
        pair = torch.stack([loss_sum, torch.tensor(float(n_items), device=loss_sum.device, dtype=loss_sum.dtype)])
        pair = all_reduce_mean(pair, self.ctx) * self.ctx.world_size
        return pair[0], int(pair[1].item())

    def _evaluate(self, standalone: bool = False) -> bool:
        """One evaluation: an `eval` event, a `sample` when generating; True if a new best."""
        model = self.model
        dtype = self.precision.full_eval_dtype
        if standalone and dtype is not None:  # HF casts the whole model only outside training
            model = self.raw_model.to(dtype)
        self.past.reset()  # HF drops the training cache at each evaluation
        metrics = evaluate(model, self._eval_loader(), self.args, self.device, self.precision.eval_autocast,
                           self.bundle.compute_metrics, "eval", self._sum_across)
        self._emit("eval", step=self.global_step, epoch=self._epoch_float(), **metrics)
        if getattr(self.args, "predict_with_generate", False):
            self._sample()
        if self.plateau:
            self.scheduler.step(self.best.value(metrics))
        if standalone:
            return False
        return self.best.update(metrics, self.global_step)

    def _sample(self) -> None:
        """Generate text from the task's prompt and emit it as a `sample` event (rank 0)."""
        if self.ctx.is_main:
            text = generate_sample(self.raw_model, self.bundle, self.args, self.device, self.precision.eval_autocast,
                                   self.generation)
            if text is not None:
                self._emit("sample", step=self.global_step, text=text)

    def _predict(self) -> None:
        metrics = evaluate(self.model, self._eval_loader(), self.args, self.device, self.precision.eval_autocast,
                           self.bundle.compute_metrics, "test", self._sum_across)
        self._emit("predict", step=self.global_step, **metrics)

    def _save(self) -> None:
        """Checkpoint (rank 0), rotate keeping the best, and emit a `checkpoint` event."""
        step = self.global_step
        name = f"checkpoint-{step}"
        is_best = self.best.best_step == step
        if is_best:
            self.best.best_model_checkpoint = name
        state = {
            "global_step": step, "epoch": self._epoch_float(), "max_steps": self.plan.total_steps,
            "sampler": {"epoch": step // self.plan.updates_per_epoch,
                        "batches_seen": (step % self.plan.updates_per_epoch) * int(self.args.gradient_accumulation_steps)},
            "log_history": self.log_history, "best": self.best.state_dict(),
            "best_metric": self.best.best_metric, "best_model_checkpoint": self.best.best_model_checkpoint,
            "window": {"loss": window_mean(self.window_loss, self.ctx), "steps": self.window_steps,
                       "samples": self.window_samples, "tokens": self.window_tokens},
            "config": redacted(self.preset.values()),
        }
        if self.ctx.is_main:
            try:
                path = ckpt.save_checkpoint(self.run_dir, step, self.raw_model, self.optimizer, self.scheduler,
                                            self.precision.scaler, state,
                                            save_only_model=bool(getattr(self.args, "save_only_model", False)))
            except ckpt.CheckpointSaveError as exc:
                self._emit("warning", step=step, message=str(exc), code=SAVE_FAILED)
            else:
                size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
                self._emit("checkpoint", step=step, path=path.name, bytes=size, is_best=is_best)
                self.integrations.on_save(path, step, self._epoch_float())
                keep = self.run_dir / self.best.best_model_checkpoint if self.best.best_model_checkpoint else None
                ckpt.rotate_checkpoints(self.run_dir, getattr(self.args, "save_total_limit", None), keep=keep)
        barrier(self.ctx)

    def _profiler(self):
        if not getattr(self.args, "profile", False):
            return contextlib.nullcontext()
        out = self.run_dir / "profile"
        out.mkdir(parents=True, exist_ok=True)

        def export(prof) -> None:
            prof.export_chrome_trace(str(out / f"trace-step{self.global_step}.json"))

        activities = [torch.profiler.ProfilerActivity.CPU]
        if self.device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        return torch.profiler.profile(activities=activities, on_trace_ready=export,
                                      schedule=torch.profiler.schedule(wait=1, warmup=1, active=3, repeat=1))

    def close(self) -> None:
        """Close the event stream and leave the process group."""
        self.integrations.close()
        self.events.close()
        shutdown(self.ctx)
