"""A stand-in trainer for runs tests: writes events like the engine, honours SIGTERM.

Usage: fake_trainer.py RUN_DIR STEPS SLEEP [--crash-at N] [--exit-code N] [--resume-from checkpoint-N]

`--exit-code N` exits with N after its final status event (torchrun exits 1 after a SIGTERM
that landed as the run ended).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

run_dir = Path(sys.argv[1])
steps, pause = int(sys.argv[2]), float(sys.argv[3])
crash_at = int(sys.argv[sys.argv.index("--crash-at") + 1]) if "--crash-at" in sys.argv else None
exit_code = int(sys.argv[sys.argv.index("--exit-code") + 1]) if "--exit-code" in sys.argv else 0
start = 0
resumed = None
if "--resume-from" in sys.argv:
    resumed = sys.argv[sys.argv.index("--resume-from") + 1]
    start = int(resumed.split("-")[1])
stop = False


def on_term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
out = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")


def checkpoint(step):
    """A folder with the files `tuitrain.layout` requires of a complete checkpoint."""
    folder = run_dir / f"checkpoint-{step}"
    folder.mkdir(exist_ok=True)
    (folder / "model.safetensors").write_bytes(b"fake weights")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "tuitrain_state.json").write_text(json.dumps({"global_step": step}))


def emit(kind, **fields):
    out.write(json.dumps({"kind": kind, "t": time.time(), **fields}) + "\n")
    out.flush()


emit("start", v=1, max_steps=steps, resumed_from=resumed, step=start, world_size=1)
for step in range(start + 1, steps + 1):
    time.sleep(pause)
    if crash_at == step:
        print("Traceback: boom at step", step, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    emit("train", step=step, loss=1.0 / step, learning_rate=0.1)
    print(f"step {step}/{steps}", flush=True)
    if stop:
        checkpoint(step)
        emit("checkpoint", step=step, path=f"checkpoint-{step}")
        emit("status", state="stopped", error=None)
        sys.exit(exit_code)
checkpoint(steps)
emit("status", state="finished", error=None)
sys.exit(exit_code)
