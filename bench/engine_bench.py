"""Engine steps/s against a minimal hand-written torch loop on the same model, data,
optimizer, clipping and scheduler; printed as ratios from one run.

    python bench/engine_bench.py [--steps 60]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from tuitrain.config import load_preset_text
from tuitrain.engine.amp import Precision
from tuitrain.engine.data import build_train_loader
from tuitrain.engine.distributed import init_distributed
from tuitrain.engine.optim import build_optimizer
from tuitrain.engine.sched import build_scheduler
from tuitrain.engine.tasks import build_task
from tuitrain.engine.trainer import Trainer

PRESET = """
[task]
name = "char_gpt"
[task.options]
block_size = 64
n_layer = 2
n_head = 2
n_embd = 64
[core]
per_device_train_batch_size = 8
gradient_accumulation_steps = {accum}
max_steps = {steps}
[optimizer]
learning_rate = 0.001
[logging]
logging_steps = {log}
save_strategy = "no"
"""


def engine_rate(text: str) -> float:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(load_preset_text(text, "bench"), Path(run_dir))
        t0 = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - t0
        steps = trainer.state.global_step
        trainer.close()
    return steps / elapsed


def hand_loop(preset, warmup: int = 0, compile_model: bool = False, window: list | None = None) -> tuple[int, float]:
    """The hand-written loop: (steps timed, seconds) after `warmup` untimed steps.

    Same model, data, optimizer, clipping and schedule as the engine, on the engine's
    device and autocast dtype; `compile_model` wraps the model in `torch.compile` as the
    engine's `torch_compile` does. `window`, when given, receives the wall-clock
    (`time.time()`) start and end of the timed steps.
    """
    args = preset.args
    torch.manual_seed(args.seed)
    device = init_distributed(args).device
    bundle = build_task(preset.task, args)
    model = bundle.model.to(device)
    precision = Precision(args, device)
    optimizer = build_optimizer(model, args)
    steps, accum = int(args.max_steps), int(args.gradient_accumulation_steps)
    scheduler = build_scheduler(optimizer, args, steps, 0)
    forward = model
    if compile_model:
        forward = torch.compile(model, backend=args.torch_compile_backend or "inductor", mode=args.torch_compile_mode)
    max_norm = float(args.max_grad_norm or 0.0)
    # The loader is built inside the timed region, as the engine builds its own.
    t0 = time.perf_counter()
    it, epoch = iter(build_train_loader(bundle, args, None, 0)), 0
    for step in range(steps):
        if step == warmup and warmup:
            _sync(device)
            t0 = time.perf_counter()
            if window is not None:
                window.append(time.time())
        for _ in range(accum):
            try:
                batch = next(it)
            except StopIteration:
                epoch += 1
                it = iter(build_train_loader(bundle, args, None, epoch))
                batch = next(it)
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with precision.train_autocast():
                loss = forward(**batch)["loss"] / accum
            precision.backward(loss)
        if max_norm > 0:
            precision.unscale(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        precision.optimizer_step(optimizer)
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    if window is not None:
        window.append(time.time())
    return steps - warmup, time.perf_counter() - t0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plain_rate(text: str) -> float:
    steps, seconds = hand_loop(load_preset_text(text, "bench"))
    return steps / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=4)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    for label, accum, log in (("plain", 1, 50), ("accumulation 4", 4, 50), ("events every step", 1, 1)):
        text = PRESET.format(accum=accum, steps=opts.steps, log=log)
        plain_rate(text), engine_rate(text)  # warm-up: lazy imports, allocator
        # Repeats in pairs, the order alternating, so drift and other load on this shared
        # machine fall on both sides alike: the median of the pairs' ratios, and the best rates.
        pairs = []
        for i in range(opts.repeats):
            if i % 2:
                engine = engine_rate(text)
                pairs.append((plain_rate(text), engine))
            else:
                hand = plain_rate(text)
                pairs.append((hand, engine_rate(text)))
        hand, engine = max(h for h, _ in pairs), max(e for _, e in pairs)
        ratio = statistics.median(e / h for h, e in pairs)
        print(f"{label:<18} hand {hand:7.2f} steps/s  engine {engine:7.2f} steps/s  ratio {ratio:.3f}x "
              f"(median of {opts.repeats} pairs)")


if __name__ == "__main__":
    main()
