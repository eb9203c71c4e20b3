"""Engine steps/s against a minimal hand-written torch loop on the same model, data,
optimizer, clipping and scheduler; printed as ratios from one run.

    python bench/engine_bench.py [--steps 60]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from tuitrain.config import load_preset_text
from tuitrain.engine.data import build_train_loader
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
        steps = trainer.global_step
        trainer.close()
    return steps / elapsed


def plain_rate(text: str) -> float:
    preset = load_preset_text(text, "bench")
    args = preset.args
    torch.manual_seed(args.seed)
    bundle = build_task(preset.task, args)
    model = bundle.model
    optimizer = build_optimizer(model, args)
    steps, accum = int(args.max_steps), int(args.gradient_accumulation_steps)
    scheduler = build_scheduler(optimizer, args, steps, 0)
    # The loader is built inside the timed region, as the engine builds its own.
    t0 = time.perf_counter()
    it = iter(build_train_loader(bundle, args, None, 0))
    for _ in range(steps):
        for _ in range(accum):
            try:
                batch = next(it)
            except StopIteration:
                it = iter(build_train_loader(bundle, args, None, 1))
                batch = next(it)
            loss = model(**batch)["loss"] / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    torch.set_num_threads(1)
    for label, accum, log in (("plain", 1, 50), ("accumulation 4", 4, 50), ("events every step", 1, 1)):
        text = PRESET.format(accum=accum, steps=opts.steps, log=log)
        plain_rate(text), engine_rate(text)  # warm-up: lazy imports, allocator
        # Interleaved repeats, best of each: this machine is noisy and the other load
        # falls on both sides alike.
        hand = engine = 0.0
        for _ in range(opts.repeats):
            hand, engine = max(hand, plain_rate(text)), max(engine, engine_rate(text))
        print(f"{label:<18} hand {hand:7.2f} steps/s  engine {engine:7.2f} steps/s  ratio {engine / hand:.3f}x")


if __name__ == "__main__":
    main()
