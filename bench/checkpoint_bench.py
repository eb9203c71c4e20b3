"""Checkpoint save / resume time against plain safetensors save / load of the same tensors.

    python bench/checkpoint_bench.py [--params-m 8] [--repeats 3]

Builds an MLP of about `--params-m` million parameters with a stepped AdamW (so the
optimizer state is real), then times, best of `--repeats`:
  - tuitrain: `save_checkpoint` (temp dir, fsync, rename, CRC, JSON state) and
    `load_checkpoint` into a fresh model + optimizer (full validation);
  - plain: `safetensors.torch.save_file` of the same model and optimizer tensors (no
    fsync), and `load_file` copied into a model / cloned (no validation, no CRC).
Prints both times and the ratios (plain / tuitrain: 1.0 means no overhead).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from tuitrain.engine.checkpoint import load_checkpoint, save_checkpoint
from tuitrain.engine.safe_state import dedupe_shared, flatten_optimizer


def build(params_m: float, seed: int = 0):
    torch.manual_seed(seed)
    width = max(64, int((params_m * 1e6 / 4) ** 0.5))
    model = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    return model, opt, sched, width


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params-m", type=float, default=8.0)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, opt, sched, width = build(a.params_m)
    model(torch.randn(2, width)).sum().backward()
    opt.step()
    n = sum(p.numel() for p in model.parameters())
    root = Path(tempfile.mkdtemp(prefix="ckpt-bench-"))
    try:
        unique, _ = dedupe_shared(dict(model.state_dict()))
        otensors, _ = flatten_optimizer(opt.state_dict())
        plain = root / "plain"
        plain.mkdir()

        def plain_save():
            save_file({k: v.contiguous() for k, v in unique.items()}, str(plain / "model.safetensors"))
            save_file(otensors, str(plain / "optimizer.safetensors"))

        plain_model = build(a.params_m, seed=2)[0]

        def plain_load():  # what a resume needs at least: weights in the model, state in memory
            plain_model.load_state_dict(load_file(str(plain / "model.safetensors")))
            [t.clone() for t in load_file(str(plain / "optimizer.safetensors")).values()]

        ours_save = lambda: save_checkpoint(root / "run", 1, model, opt, sched, None, {"global_step": 1})  # noqa: E731
        fresh = build(a.params_m, seed=1)[:3]
        ours_load = lambda: load_checkpoint(root / "run" / "checkpoint-1", *fresh)  # noqa: E731

        t_ps, t_os = best(plain_save, a.repeats), best(ours_save, a.repeats)
        t_pl, t_ol = best(plain_load, a.repeats), best(ours_load, a.repeats)
        size = sum(f.stat().st_size for f in (root / "run" / "checkpoint-1").iterdir()) / 2**20
        print(f"model {n / 1e6:.1f}M params, checkpoint {size:.0f} MiB, best of {a.repeats}")
        print(f"save:   tuitrain {t_os * 1e3:8.1f} ms   plain safetensors {t_ps * 1e3:8.1f} ms   ratio {t_ps / t_os:.2f}x")
        print(f"resume: tuitrain {t_ol * 1e3:8.1f} ms   plain safetensors {t_pl * 1e3:8.1f} ms   ratio {t_pl / t_ol:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
