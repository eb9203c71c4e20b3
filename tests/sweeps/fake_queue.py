"""The real sweep queue (`tuitrain.sweeps.runner`) whose members run `tests/runs/fake_trainer.py`.

A member trains `core.max_steps` steps of `optimizer.warmup_steps / 100` seconds each
(0.05 s when 0); a member with `optimizer.learning_rate >= 1` crashes at its second step.
Usage: fake_queue.py SWEEP_DIR --lock-fd N (as the runner).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tuitrain.runs import launch
from tuitrain.sweeps import runner

FAKE = str(Path(__file__).resolve().parents[1] / "runs" / "fake_trainer.py")


def fake_argv(preset, run_dir, resume_from=None, lineage=None):
    args = preset.args
    pause = args.warmup_steps / 100 if args.warmup_steps else 0.05
    argv = [sys.executable, FAKE, str(run_dir), str(args.max_steps), str(pause)]
    if args.learning_rate >= 1:
        argv += ["--crash-at", "2"]
    if resume_from:
        argv += ["--resume-from", resume_from]
    return argv


launch.engine_argv = fake_argv

if __name__ == "__main__":
    sys.exit(runner.main())
