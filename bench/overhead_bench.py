"""Host overhead per step: the engine against a raw training loop on a tiny model, where the
framework is all there is. Printed side by side from one run, as steps/s and their ratio.

    python bench/overhead_bench.py [--steps 3000] [--repeats 3] [--hf]

Both train the built-in `regression` task (a 3-layer MLP of width 32 on 8 features, batch
32) with AdamW, gradient clipping at 1.0 and a linear schedule, and log every 100 steps.
The raw loop is what one writes by hand: a torch DataLoader with a seeded RandomSampler,
forward, backward, clip, step, schedule, and `.item()` only at the logging steps. The
engine runs everything it runs in a real run (events, progress line, grad norm, NaN
filter, HF's logged rate). `--hf` adds `transformers.Trainer` on the same task.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, RandomSampler

from tuitrain.config import load_preset_text
from tuitrain.engine.tasks import build_task
from tuitrain.engine.trainer import Trainer

PRESET = """
[task]
name = "regression"
[task.options]
n_samples = 4000
n_features = 8
hidden = 32
[core]
per_device_train_batch_size = {batch}
max_steps = {steps}
[optimizer]
optim = "adamw_torch"  # the raw loop's torch.optim.AdamW
learning_rate = 0.001
max_grad_norm = 1.0
[logging]
logging_steps = 100
save_strategy = "no"
[reproducibility]
disable_tqdm = true
"""


class Clock:
    """Wall time and this process's CPU time (on a shared machine the CPU time is steadier)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, steps: int) -> tuple[float, float]:
        return steps / (time.perf_counter() - self.wall), steps / (time.process_time() - self.cpu)


def engine_rate(text: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(load_preset_text(text, "bench"), Path(run_dir))
        clock = Clock()
        trainer.train()
        rates = clock.rates(trainer.state.global_step)
        trainer.close()
    return rates


def raw_rate(text: str) -> tuple[float, float]:
    """A hand-written loop over the same task."""
    preset = load_preset_text(text, "bench")
    args = preset.args
    torch.manual_seed(args.seed)
    bundle = build_task(preset.task, args)
    model = bundle.model
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=0.0)
    steps = args.max_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (steps - s) / steps))
    clock = Clock()
    epoch, step = 0, 0
    loss_sum, logged = torch.zeros(()), []
    while step < steps:
        sampler = RandomSampler(bundle.train_dataset, generator=torch.Generator().manual_seed(args.seed + epoch))
        for batch in DataLoader(bundle.train_dataset, batch_size=args.per_device_train_batch_size, sampler=sampler):
            loss = model(**batch)["loss"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.detach()
            step += 1
            if step % 100 == 0:
                logged.append(loss_sum.item() / 100)  # the logging step's host sync
                loss_sum.zero_()
            if step >= steps:
                break
        epoch += 1
    return clock.rates(steps)


def hf_rate(text: str) -> tuple[float, float]:
    """transformers.Trainer on the same task (its own loop, logging every 100 steps)."""
    import transformers

    from tuitrain.config.hf import export_hf_dict

    transformers.logging.set_verbosity_error()
    preset = load_preset_text(text, "bench")
    bundle = build_task(preset.task, preset.args)
    with tempfile.TemporaryDirectory() as out:
        args = transformers.TrainingArguments(**{**export_hf_dict(preset), "output_dir": out, "use_cpu": True,
                                                 "report_to": [], "disable_tqdm": True})
        trainer = transformers.Trainer(model=bundle.model, args=args, train_dataset=bundle.train_dataset)
        clock = Clock()
        trainer.train()
        return clock.rates(preset.args.max_steps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hf", action="store_true", help="also time transformers.Trainer")
    opts = parser.parse_args()
    torch.set_num_threads(1)
    text = PRESET.format(steps=opts.steps, batch=opts.batch)
    warm = PRESET.format(steps=200, batch=opts.batch)
    raw_rate(warm), engine_rate(warm)  # warm-up: imports, allocator
    # Repeats in pairs, the order alternating (raw first, then engine first), so drift and
    # other load on this shared machine fall on both sides alike; the ratio reported is the
    # median of the pairs' ratios, the rates the best seen.
    runs = {"raw": raw_rate, "engine": engine_rate, **({"hf": hf_rate} if opts.hf else {})}
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
    for i in range(opts.repeats):
        for name in (list(runs) if i % 2 == 0 else list(runs)[::-1]):
            rates[name].append(runs[name](text))
    for k, clock in enumerate(("wall", "cpu")):
        best = {name: max(r[k] for r in got) for name, got in rates.items()}
        ratio = statistics.median(e[k] / r[k] for e, r in zip(rates["engine"], rates["raw"]))
        line = (f"{clock:>4}: raw loop {best['raw']:7.1f} steps/s  engine {best['engine']:7.1f} steps/s  "
                f"ratio {ratio:.3f}x (median of {opts.repeats} pairs)")
        if opts.hf:
            hf_ratio = statistics.median(h[k] / r[k] for h, r in zip(rates["hf"], rates["raw"]))
            line += f"  transformers.Trainer {best['hf']:7.1f} steps/s  ratio {hf_ratio:.3f}x"
        print(line)


if __name__ == "__main__":
    main()
