"""The training loop: read it top to bottom like nanoGPT's.

`Trainer(preset, run_dir, resume_from=None).train()` runs the phases (train, eval,
predict), writes events to `metrics.jsonl` (rank 0), checkpoints, and returns an exit
code. Numbers follow transformers' `Trainer` (see README, "Differences from
transformers.Trainer", for the few deliberate exceptions). The only host syncs are at
logging steps, evaluations and checkpoints.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import math
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
from . import device_info
from . import fsdp
from . import rng as rng_mod
from .amp import Precision
from .data import build_eval_loader, build_train_loader, start_epoch
from .distributed import (all_reduce_mean, barrier, gradient_sync_skipper, init_distributed, shutdown, window_mean,
                          wrap_model)
from .evaluate import evaluate, generate_sample
from .events import SAVE_FAILED, EventWriter, exit_code
from .generation import load_generation_config
from .integrations import Integrations
from .losses import LossSpec, model_loss
from .model_setup import DynamicBatch, enable_activation_checkpointing, flos_per_token, profiler
from .optim import build_optimizer
from .past import PastState
from .progress import ProgressLine
from .resume_check import check_resume_config
from .resume_field import (align_lr_to_schedule, apply_fork_settings, checkpoint_from_field, group_settings,
                           naming_field)
from .safe_state import StateFormatError
from .sched import build_scheduler, is_metric_driven
from .seeding import determinism_env, set_seed
from .signals import StopRequest
from .tasks import build_task
from .telemetry_mem import memory_fields
from .train_state import TrainState


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Builds the task, optimizer, scheduler and loaders from a `Preset`; `train()` runs it."""

    def __init__(self, preset, run_dir, resume_from: str | None = None, lineage: dict | None = None) -> None:
        self.preset = preset
        self.run_dir = Path(run_dir)
        self.resume_from = resume_from
        determinism_env(preset.args.full_determinism)  # before CUDA starts, or it has no effect
        # Where this start sits in the run's lineage (`parent` of a fork, `rewound` of a rewind),
        # as the launcher says: written into the `start` event for every reader.
        self.lineage = dict(lineage or {})
        self.ctx = init_distributed(preset.args)
        self.device = self.ctx.device
        # Printed now, before a precision refusal (fp16 on CPU) can end the run; events after `start`.
        self.device_warnings = device_info.cpu_fallback_warnings(preset, self.ctx)
        self.events = EventWriter(self.run_dir, enabled=self.ctx.is_main)
        if self.ctx.is_main:
            # A trainer killed mid-save leaves `.checkpoint-N.tmp-<pid>/`; never listed, removed here.
            ckpt.clean_stale_tmp(self.run_dir)
        self.stop = StopRequest()
        self.generation = load_generation_config(preset.args.generation_config)
        # report_to trackers and push_to_hub: imported now, so a missing package fails before step 1
        self.integrations = Integrations(preset.args, preset.task, self.run_dir,
                                         preset.args.run_name or self.run_dir.name, self.ctx.is_main, self._emit)
        self._build(preset.args)
        if resume_from:
            self._resume(resume_from)
        elif self.args.resume_from_checkpoint:  # a new run from another run's checkpoint
            source = checkpoint_from_field(self.args.resume_from_checkpoint)
            self.resume_from = str(source)
            with naming_field(source):
                self._resume(self.resume_from)

    def _build(self, args) -> None:
        """The task's model and data, the optimizer, the schedule and a fresh state, for `args`."""
        self.args = args
        set_seed(args.seed, args.full_determinism)
        self.bundle = build_task(self.preset.task, args, self.ctx)
        if args.activation_checkpointing:
            enable_activation_checkpointing(self.bundle.model, args.activation_checkpointing_kwargs)
        self.raw_model = self.bundle.model.to(self.device)
        self.precision = Precision(args, self.device)
        self.plan = plan_steps(args, len(self.bundle.train_dataset), self.ctx.world_size)
        self.model = wrap_model(self.raw_model, args, self.ctx)  # FSDP shards raw_model in place
        self.sharded = fsdp.is_sharded(self.raw_model)
        self.optimizer = build_optimizer(self.raw_model, args)  # over the parameters as wrapped
        self.scheduler = build_scheduler(self.optimizer, args, self.plan.total_steps, self.plan.warmup_steps)
        self.plateau = is_metric_driven(self.scheduler)
        self.eval_model = self.model
        if args.torch_compile:
            self.model = torch.compile(self.model, backend=args.torch_compile_backend or "inductor",
                                       mode=args.torch_compile_mode)
            self.eval_model = DynamicBatch(self.model)
        self.loss_spec = LossSpec.of(self.raw_model, args)
        self.past = PastState(args.past_index)
        self.state = TrainState(args, flos_per_token(self.raw_model), self.bundle.tokens_per_example,
                                getattr(self.raw_model, "main_input_name", "input_ids"))
        # The step intervals of the "steps" strategies (0: not by steps), resolved once.
        self.log_every, self.eval_every, self.save_every = (
            self._interval(every) if strategy == "steps" else 0 for strategy, every in (
                (args.logging_strategy, args.logging_steps), (args.eval_strategy, args.eval_steps),
                (args.save_strategy, args.save_steps)))
        self.parameters = list(self.raw_model.parameters())  # clipped every step: listed once
        self.clip_norm = args.max_grad_norm if args.max_grad_norm > 0 else float("inf")  # HF: a norm always
        self._no_context = contextlib.nullcontext()
        self.no_sync = gradient_sync_skipper(self.model)  # DDP's or FSDP's; looked up once
        self._pending_rng = None
        # Built once and reused: every epoch (and evaluation) starts the same loader again, so
        # persistent workers persist and nothing is constructed per epoch.
        self._train_loader = self._eval_loader_cache = None
        self._eval_forwards = 0  # FSDP: the forward passes every rank runs per evaluation
        # This session's start (reset when training starts): runtimes and rates count from here.
        self.t0, self.first_step, self.saved_step, self.tokens_at_start = time.time(), 0, None, 0
        self.diverged: str | None = None  # set at a logging step whose losses were not finite

    # -- state: what a checkpoint holds, saved and loaded side by side ------------------------

    def _save(self) -> None:
        """Checkpoint (rank 0), rotate keeping the best, and emit a `checkpoint` event."""
        state, best, step = self.state, self.state.best, self.state.global_step
        if best.best_step is not None and (best.best_step == step or (self.run_dir / f"checkpoint-{best.best_step}").is_dir()):
            best.best_model_checkpoint = f"checkpoint-{best.best_step}"  # HF: once that checkpoint exists
        ours = {**state.state_dict(), "max_steps": self.plan.total_steps, "config": redacted(self.preset.values()),
                "sampler": {"epoch": step // self.plan.updates_per_epoch,
                            "batches_seen": (step % self.plan.updates_per_epoch) * self.args.gradient_accumulation_steps}}
        if self.ctx.world_size > 1:  # every rank's part of the logging window (a collective at each save)
            ours["window"]["loss"] = window_mean(torch.tensor(ours["window"]["loss"], device=self.device), self.ctx)
        hf = state.hf_state(self.args, self.plan, self.run_dir, self._interval)
        full = {}
        if self.sharded:  # every rank sends its shards; rank 0 writes what one process would
            full["model_state"], full["optimizer_state"] = fsdp.full_state(
                self.raw_model, None if self.args.save_only_model else self.optimizer)
        if self.ctx.is_main:
            try:
                path = ckpt.save_checkpoint(self.run_dir, step, self.raw_model, self.optimizer, self.scheduler,
                                            self.precision.scaler, ours, hf, save_only_model=self.args.save_only_model,
                                            **full)
            except ckpt.CheckpointSaveError as exc:
                self._emit("warning", step=step, message=str(exc), code=SAVE_FAILED)
            else:
                size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
                keep = self.run_dir / best.best_model_checkpoint if best.best_model_checkpoint else None
                # on the current line only: never the one just written, nor a line the run left
                removed = ckpt.rotate_checkpoints(self.run_dir, self.args.save_total_limit, keep=keep, newest=path)
                self._emit("checkpoint", step=step, path=path.name, bytes=size, is_best=best.best_step == step,
                           best_checkpoint=best.best_model_checkpoint, best_metric=best.best_metric,
                           removed=[p.name for p in removed])
                self.integrations.on_save(path, step, state.epoch)
        self.saved_step = step
        barrier(self.ctx)

    def _resume(self, name: str) -> None:
        path = Path(name) if Path(name).is_absolute() else self.run_dir / name
        try:
            saved = ckpt.read_state(path)
        except StateFormatError as exc:
            raise ckpt.CheckpointLoadError(f"checkpoint {path} refused: {exc}; nothing was loaded") from None
        if type(saved.get("global_step")) is not int:
            raise ckpt.CheckpointLoadError(f"checkpoint {path} refused: its state has no integer global_step; "
                                           "nothing was loaded")
        forking = bool((self.lineage.get("parent") or {}).get("fork"))  # `tuitrain fork`'s first start
        self.resume_changes = check_resume_config(saved.get("config"), redacted(self.preset.values()), path.name,
                                                  fork=forking)
        built = group_settings(self.optimizer)
        loaded = ckpt.load_checkpoint(path, self.raw_model, self.optimizer, self.scheduler,
                                      self.precision.scaler, restore_rng=False)
        if forking:  # a fork's new learning rate, weight decay, betas or epsilon
            apply_fork_settings(self.optimizer, self.scheduler, built, self.resume_changes)
        align_lr_to_schedule(self.optimizer, self.scheduler)  # a changed max_steps changes the schedule
        self.state.load_state_dict(loaded, loaded["hf_state"])
        self._pending_rng = loaded["rng_state"]

    # -- events -----------------------------------------------------------------------------

    def _emit(self, kind: str, **fields) -> None:
        event = self.events.emit(kind, **fields)
        if event is not None:
            self.integrations.on_event(event)
            if kind in ("train", "eval", "summary"):  # as metrics.jsonl holds it: NaN/inf are null
                self.state.log_history.append({k: None if isinstance(v, float) and not math.isfinite(v) else v
                                               for k, v in event.items() if k not in ("kind", "t")})

    def _interval(self, value) -> int | None:
        return resolve_interval(value, self.plan.total_steps)

    # -- the phases -------------------------------------------------------------------------

    def train(self) -> int:
        """Run every phase; returns the exit code (0 finished or stopped, 1 failed)."""
        args = self.args
        self.stop.install()
        self._batch_recorded = False
        state = "finished"
        try:
            self._emit_start()
            periodic_eval = args.eval_strategy != "no"
            # HF: do_eval is implied by an eval strategy; with no phase asked for, train.
            do_train = args.do_train or not (args.do_predict or (args.do_eval and not periodic_eval))
            outcome = self._train_fitting_batch() if do_train else "finished"
            if outcome in ("stopped", "diverged"):
                state = outcome
            elif args.do_eval and (not do_train or not periodic_eval):
                self._evaluate(standalone=not do_train)
            if state == "finished" and args.do_predict:
                self._predict()
            final = self.raw_model
            if self.sharded and self.args.push_to_hub:  # every rank sends its shards; rank 0 pushes them whole
                final = fsdp.full_state(self.raw_model, None)[0]
            self.integrations.finish(state, final)
            self._emit("status", state=state, error=None)
            return exit_code(state, self.events)
        except Exception as exc:  # noqa: BLE001 - the run records every failure
            line = exc.one_line() if isinstance(exc, TuitrainError) else f"{type(exc).__name__}: {exc}"
            print(traceback.format_exc(), file=sys.stderr, flush=True)
            self.integrations.finish("failed")
            self._emit("status", state="failed", error=line.splitlines()[0] if line else type(exc).__name__)
            return 1
        finally:
            self.stop.uninstall()
            self.integrations.close()

    def _emit_start(self) -> None:
        self._emit("start", run=self.run_dir.name, world_size=self.ctx.world_size, max_steps=self.plan.total_steps,
                   resumed_from=self.resume_from, step=self.state.global_step, config=redacted(self.preset.values()),
                   device=device_info.describe(self.ctx), **self.lineage)
        for message in self.device_warnings:  # once: an auto-batch-size restart does not repeat them
            self._emit("warning", step=self.state.global_step, message=message)
        self.device_warnings = []
        self._emit("status", state="running", error=None)

    def _train_fitting_batch(self) -> str:
        """`_train_loop()`; with auto_find_batch_size, running out of memory rebuilds the model
        with a batch 0.9× as large and trains again from step 0 (HF's find_executable_batch_size)."""
        checkpoints_before = set(ckpt.list_checkpoints(self.run_dir))
        while True:
            try:
                return self._train_loop()
            except Exception as exc:
                smaller = autobatch.smaller_batch(exc, self.args, self.resume_from, self.ctx.world_size)
                if smaller is None:
                    raise
                note = (f"out of memory at per_device_train_batch_size={self.args.per_device_train_batch_size} "
                        f"(step {self.state.global_step}); restarting training from step 0 with "
                        f"per_device_train_batch_size={smaller}")
            # Out of the except clause: the traceback no longer holds the failed step's tensors.
            self.bundle = self.raw_model = self.model = self.eval_model = self.optimizer = self.scheduler = None
            self.precision = self._train_loader = self._eval_loader_cache = None
            if self.args.torch_compile:
                # The failed batch's graphs go too: the next batch compiles afresh, static, rather
                # than as a recompile that guesses the batch size varies (a slower dynamic graph).
                torch._dynamo.reset()
            self._use_smaller_batch(note, per_device_train_batch_size=smaller)
            # Checkpoints of the abandoned attempt hold another batch's state: never resume from them.
            autobatch.discard_checkpoints(self.run_dir, checkpoints_before)
            self._build(self.preset.args)
            self._emit_start()

    def _use_smaller_batch(self, note: str, **batch) -> None:
        """After running out of memory: say so (a `warning` event and a line), free what the
        failed attempt held, and record the smaller `batch` in the preset and the run's preset.toml."""
        self._emit("warning", step=self.state.global_step, message=f"{autobatch.FIELD}: {note}")
        if self.ctx.is_main:
            print(note, flush=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        self.preset.args = self.preset.args.replace(**batch)
        self._batch_recorded = autobatch.record_batch(self.run_dir, self.preset, not self._batch_recorded) \
            or self._batch_recorded

    # -- the loop ---------------------------------------------------------------------------

    def _train_loop(self) -> str:
        """Optimizer steps until max_steps, early stopping or a stop request, in HF's order."""
        args, plan, state = self.args, self.plan, self.state
        progress = ProgressLine(plan.total_steps, state.global_step, enabled=self.ctx.is_main)
        self.t0, self.first_step, self.saved_step = time.time(), state.global_step, None
        self.diverged = None
        self.tokens_at_start = state.tokens_seen
        if args.eval_on_start and state.global_step == 0:
            self._evaluate(on_start=True)
        self.model.train()
        done = False
        with profiler(self.args.profile, self.run_dir, self.device, lambda: self.state.global_step) as prof:
            for epoch in range(state.global_step // plan.updates_per_epoch, plan.num_epochs):
                micro_done = (state.global_step % plan.updates_per_epoch) * args.gradient_accumulation_steps
                windows = self._epoch_windows(epoch, micro_done)
                for window in windows:
                    self._optimizer_step(window)
                    micro_done += len(window)
                    state.global_step += 1
                    state.epoch = epoch + micro_done / plan.batches_per_epoch
                    if prof is not None:
                        prof.step()
                    done = self._after_step(progress)
                    if self.diverged is not None:  # seen at a logging step: no per-step host sync
                        return self._stop_diverged(progress)
                    if self.stop.agreed(self.ctx):  # every rank decides alike, at the same step
                        if self.saved_step != state.global_step:
                            self._save()
                        progress.message(f"{self.stop.signal_name}: stopped at step {state.global_step}")
                        return "stopped"
                    if done:
                        break
                self._after_epoch(progress)  # also when max_steps or early stopping cut it short
                if done or state.global_step >= plan.total_steps:
                    break
        self._finish_training(progress)
        return "finished"

    def _stop_diverged(self, progress: ProgressLine) -> str:
        """The loss became NaN/inf: save a checkpoint (to inspect, or to fork from with a lower
        rate), say so, and end the run as `diverged` rather than burn the rest of its steps."""
        step = self.state.global_step
        if self.saved_step != step:
            self._save()
        message = (f"the training loss became {self.diverged} by step {step}: stopped as diverged "
                   f"(checkpoint-{step} saved; a lower learning_rate or max_grad_norm may help)")
        self._emit("warning", step=step, message=message, code="diverged")
        progress.message(message)
        return "diverged"

    def _epoch_windows(self, epoch: int, skip_batches: int):
        """The epoch's micro-batches, `gradient_accumulation_steps` per update (fewer in the
        epoch's last), starting `skip_batches` in. The loader is built without drawing from the
        global RNG, so a resumed run and an uninterrupted one see the same dropout masks."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        if self._train_loader is None:
            self._train_loader = build_train_loader(self.bundle, self.args, self.ctx)
        start_epoch(self._train_loader, self.args, epoch, skip_batches)
        with torch.random.fork_rng(devices=devices):
            it = iter(self._train_loader)
            first = next(it, None)  # loaders start (and draw worker seeds) lazily, on the first batch
        it = itertools.chain([first], it) if first is not None else iter(())
        self.past.reset()
        if self._pending_rng is not None:  # resumed: continue the RNG stream of step N
            rng_mod.restore_rng_state(self._pending_rng)
            self._pending_rng = None
        accum, left = self.args.gradient_accumulation_steps, self.plan.batches_per_epoch - skip_batches
        while left > 0:
            window = list(itertools.islice(it, min(accum, left)))
            if not window:
                return
            left -= len(window)
            yield window

    def _optimizer_step(self, window: list[dict]) -> None:
        """Forward/backward every micro-batch of the window, clip, step, schedule (HF's order)."""
        window_state, spec, n = self.state.window, self.loss_spec, len(window)
        num_items = self._window_items(window)  # None unless the model normalises over the window itself
        for i, batch in enumerate(window):
            self.state.count(batch)
            if self.device.type != "cpu":
                batch = _to_device(batch, self.device)
            with self._gradient_sync(i == n - 1), self.precision.train_autocast():
                loss, outputs = model_loss(self.model, self.past.feed(batch), spec, num_items)
                if num_items is None and n > 1:
                    loss = loss / n  # HF: the mean of the micro-batches' means
                elif num_items is not None and self.ctx.world_size > 1 and self.args.average_tokens_across_devices:
                    loss = loss * self.ctx.world_size  # the count is global; DDP's gradient mean undoes this
            self.past.keep(outputs)
            del outputs  # the logits go before the next micro-batch's forward
            self.precision.backward(loss)
            window_state.add_loss(loss.detach())
        self.precision.unscale(self.optimizer)  # fp16: clip and report the norm in real units
        window_state.grad_norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.clip_norm)
        stepped = self.precision.optimizer_step(self.optimizer)
        lr = self.optimizer.param_groups[0]["lr"]  # the rate this update ran at (HF logs it)
        window_state.lr = lr.clone() if torch.is_tensor(lr) else lr  # a scheduler fills tensor rates in place
        if stepped and not self.plateau:
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        window_state.steps += 1

    def _window_items(self, window: list[dict]) -> int | None:
        """HF's num_items_in_batch for a model that takes it: the window's label items (summed
        over ranks with average_tokens_across_devices)."""
        num_items = self.loss_spec.num_items(window)
        if num_items is not None and self.ctx.world_size > 1 and self.args.average_tokens_across_devices:
            total = all_reduce_mean(torch.tensor(float(num_items), device=self.device), self.ctx)
            num_items = int(round(total.item() * self.ctx.world_size))
        return num_items

    def _gradient_sync(self, last: bool):
        """DDP's `no_sync` for all but the window's last micro-batch."""
        return self.no_sync() if self.no_sync is not None and not last else self._no_context

    # -- logging, evaluation, saving: HF's DefaultFlowCallback --------------------------------

    def _after_step(self, progress: ProgressLine) -> bool:
        """Log, evaluate and save as HF does at a step's end; True when training should stop."""
        args, step = self.args, self.state.global_step
        last = step >= self.plan.total_steps
        if (self.log_every and step % self.log_every == 0) or (step == 1 and args.logging_first_step):
            self._log(progress)
        improved = False
        if args.eval_strategy == "steps" and args.eval_delay <= step and (
                (self.eval_every and step % self.eval_every == 0) or last):  # HF also evaluates at max_steps
            improved = self._evaluate()
        if args.sample_every and step % args.sample_every == 0:
            self._sample()
        if args.torch_empty_cache_steps and step % args.torch_empty_cache_steps == 0 and self.device.type == "cuda":
            torch.cuda.empty_cache()
        if ((self.save_every and step % self.save_every == 0) or (last and args.save_strategy == "steps")
                or (args.save_strategy == "best" and improved)):
            self._save()
        return last or self.state.best.should_stop

    def _after_epoch(self, progress: ProgressLine) -> None:
        """HF's epoch end, reached also when max_steps or early stopping ends the epoch early."""
        args = self.args
        if args.logging_strategy == "epoch":
            self._log(progress)
        improved = False
        if args.eval_strategy == "epoch" and args.eval_delay <= self.state.epoch:
            improved = self._evaluate()
        if args.save_strategy == "epoch" or (args.save_strategy == "best" and improved):
            self._save()

    def _log(self, progress: ProgressLine) -> None:
        state, window = self.state, self.state.window
        if window.steps == 0:  # nothing since the last log (HF: global_step > last logged step)
            return
        loss_sum = window.fold()
        bad, folded = float(window.nonfinite), float(window.folded)
        if self.ctx.world_size > 1:  # one all-reduce: every rank agrees on the loss and on divergence
            loss_sum, bad, folded = all_reduce_mean(
                torch.tensor([loss_sum, bad, folded], device=self.device), self.ctx).tolist()
        if bad > 0 and self._diverged(all_bad=bad >= folded >= 2):
            self.diverged = "NaN/inf"
        elapsed = max(time.perf_counter() - window.t0, 1e-9)
        state.loss_total += loss_sum
        state.loss_steps += window.steps
        grad_norm = window.grad_norm
        if hasattr(grad_norm, "full_tensor"):  # FSDP: a DTensor (the global norm; every rank logs)
            grad_norm = grad_norm.full_tensor()
        fields = {"step": state.global_step, "epoch": state.epoch, "loss": loss_sum / window.steps,
                  "grad_norm": float(grad_norm.item()), "learning_rate": float(window.lr)}
        fields.update(self._tokens_seen_fields(), samples_per_second=round(window.samples * self.ctx.world_size / elapsed, 3))
        if window.tokens:
            fields["tokens_per_second"] = round(window.tokens * self.ctx.world_size / elapsed, 3)
        fields.update(memory_fields(self.device, peak=not self.args.skip_memory_metrics))
        self._emit("train", **fields)
        progress.update(state.global_step, fields["loss"], fields["learning_rate"],
                        fields["samples_per_second"], fields.get("tokens_per_second"))
        window.reset()

    def _diverged(self, all_bad: bool) -> bool:
        """After a logging window with a NaN/inf loss: has training diverged? Yes when every loss
        of a window of several was NaN/inf, or the weights are no longer finite (one check, made
        only then);
        a lone bad batch whose update left the weights finite is ridden over, as transformers does
        (`logging_nan_inf_filter`, fp16's skipped steps)."""
        if all_bad:
            return True
        local = [p.to_local() if hasattr(p, "to_local") else p for p in self.parameters]  # FSDP: this rank's shards
        finite = torch.stack([torch.isfinite(p.detach()).all() for p in local]).all().float()
        if self.ctx.world_size > 1:  # a sharded model: each rank checks its shards; any bad one counts
            finite = all_reduce_mean(finite, self.ctx)
        return bool(finite.item() < 1.0)

    def _tokens_seen_fields(self) -> dict:
        if self.args.include_num_input_tokens_seen == "no":
            return {}
        seen = self.state.tokens_seen
        if self.ctx.world_size > 1:
            seen = int(all_reduce_mean(torch.tensor(float(seen), device=self.device), self.ctx).item() * self.ctx.world_size)
        runtime = max(time.time() - self.t0, 1e-9)
        session = seen - self.tokens_at_start * (self.ctx.world_size if self.ctx.world_size > 1 else 1)
        return {"num_input_tokens_seen": seen, "train_runtime": round(runtime, 4),
                "train_tokens_per_second": round(session / runtime, 3)}

    def _finish_training(self, progress: ProgressLine) -> None:
        """HF's end of training: the summary, the best model loaded, `save_total_limit = 1` honoured."""
        state, best, args = self.state, self.state.best, self.args
        batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * self.ctx.world_size
        examples = self.plan.total_steps * batch if args.max_steps > 0 else len(self.bundle.train_dataset) * args.num_train_epochs
        self._emit("summary", **state.summary(self.plan.total_steps, examples, state.global_step - self.first_step,
                                              time.time() - self.t0))
        if best.should_stop:
            progress.message(f"early stopping at step {state.global_step}")
        if args.load_best_model_at_end and best.best_model_checkpoint:
            path = self.run_dir / best.best_model_checkpoint
            if path.is_dir():
                ckpt.load_checkpoint(path, self.raw_model, restore_rng=False)
                progress.message(f"loaded the best model from {path.name}")
        if self.ctx.is_main and best.best_model_checkpoint and args.save_total_limit == 1:
            ckpt.keep_only(self.run_dir, self.run_dir / best.best_model_checkpoint, newest=state.global_step)

    def _eval_loader(self):
        if self.bundle.eval_dataset is None:
            raise TuitrainError("evaluation: this task has no eval dataset (set eval_strategy = \"no\")")
        loader = self._eval_loader_cache
        if loader is None or loader.batch_size != self.args.per_device_eval_batch_size:
            loader = self._eval_loader_cache = build_eval_loader(self.bundle, self.args, self.ctx)
            self._eval_forwards = fsdp.even_forwards(len(loader), self.ctx) if self.sharded else 0
        return loader

    def _sum_across(self, sums: torch.Tensor) -> torch.Tensor:
        return sums if self.ctx.world_size == 1 else all_reduce_mean(sums, self.ctx) * self.ctx.world_size

    def _evaluate(self, standalone: bool = False, on_start: bool = False) -> bool:
        """One evaluation and its `eval` event; True if it is a new best. As HF, the one of
        `eval_on_start` steps no scheduler and counts for neither best model nor early stopping."""
        model = self.eval_model
        dtype = self.precision.full_eval_dtype
        if standalone and dtype is not None:  # HF casts the whole model only outside training
            model = self.raw_model.to(dtype)
        self.past.reset()  # HF drops the training cache at each evaluation
        metrics = self._run_evaluation(model, "eval")
        tokens = self._tokens_seen_fields() if self.args.include_num_input_tokens_seen != "no" else {}
        self._emit("eval", step=self.state.global_step, epoch=self.state.epoch, **metrics,
                   **({"num_input_tokens_seen": tokens["num_input_tokens_seen"]} if tokens else {}))
        if self.args.predict_with_generate:
            self._sample()
        if standalone or on_start:
            return False
        best = self.state.best
        best.early_stopping_check(metrics)
        if self.plateau:
            self.scheduler.step(best.value(metrics))
        return best.update(metrics, self.state.global_step)

    def _sample(self) -> None:
        """Generate text from the task's prompt and emit it as a `sample` event (rank 0). With
        FSDP every rank generates: each forward pass gathers the shards of all ranks."""
        if self.ctx.is_main or self.sharded:
            model = fsdp.SyncedGenerate(self.raw_model) if self.sharded else self.raw_model
            text = generate_sample(model, self.bundle, self.args, self.device, self.precision.eval_autocast,
                                   self.generation)
            if text is not None and self.ctx.is_main:
                self._emit("sample", step=self.state.global_step, text=text)

    def _run_evaluation(self, model, prefix: str) -> dict:
        """`evaluate()` over the eval set; with auto_find_batch_size, running out of memory
        shrinks the eval batch (never the training batch) and evaluates again."""
        training = model.training
        while True:
            try:
                loader = self._eval_loader()
                return evaluate(model, loader, self.args, self.device, self.precision.eval_autocast,
                                self.bundle.compute_metrics, prefix, self._sum_across, self.loss_spec,
                                self._eval_forwards)
            except Exception as exc:
                model.train(training)  # a failed evaluation leaves the model in eval mode
                smaller = autobatch.smaller_eval_batch(exc, self.args, self.ctx.world_size)
                if smaller is None:
                    raise
            # Out of the except clause: the traceback no longer holds the failed batch's tensors.
            note = (f"evaluation ran out of memory at per_device_eval_batch_size={self.args.per_device_eval_batch_size} "
                    f"(step {self.state.global_step}); evaluating again with per_device_eval_batch_size={smaller}")
            self._eval_loader_cache = None
            self._use_smaller_batch(note, per_device_eval_batch_size=smaller)
            self.args = self.args.replace(per_device_eval_batch_size=smaller)

    def _predict(self) -> None:
        metrics = self._run_evaluation(self.eval_model, "test")
        self._emit("predict", step=self.state.global_step, **metrics)

    def close(self) -> None:
        """Close the event stream and leave the process group."""
        self.integrations.close()
        self.events.close()
        shutdown(self.ctx)
