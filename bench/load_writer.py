"""A stand-in trainer for `ui_latency_bench.py`: `python load_writer.py RUN_DIR MAX_STEPS RATE`.

It writes what the engine writes for a run that logs every step (a `start` and a `running`
status, one `train` event per step) with the engine's own `EventWriter`, and prints the
engine's progress line to stdout (`stdout.log` under the supervisor), paced at RATE steps
a second, without importing torch: eight real trainers on two cores would measure the
machine's arithmetic, not the app (`tests/reliability/test_load.py` runs real ones). Like
the engine, SIGTERM (`tuitrain stop`) ends it after the current step with a `stopped`
status; reaching MAX_STEPS ends it `finished`.
"""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tuitrain.engine.events import EventWriter  # noqa: E402
from tuitrain.engine.progress import ProgressLine  # noqa: E402


def main(argv: list[str]) -> int:
    run_dir, max_steps, rate = Path(argv[0]), int(argv[1]), float(argv[2])
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    writer = EventWriter(run_dir)
    progress = ProgressLine(max_steps)
    writer.emit("start", run=run_dir.name, world_size=1, max_steps=max_steps, resumed_from=None, step=0,
                config={})
    writer.emit("status", state="running", error=None)
    t0 = time.monotonic()
    for step in range(1, max_steps + 1):
        delay = t0 + step / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        loss = 2.0 * math.exp(-step / 400) + 0.05 * math.sin(step / 7)
        lr = 1e-3 * (1 - step / (max_steps + 1))
        writer.emit("train", step=step, epoch=round(step / 8, 4), loss=loss, learning_rate=lr,
                    grad_norm=0.5 + 0.1 * math.cos(step), samples_per_second=rate * 8)
        progress.update(step, loss, lr, rate * 8)
        if stop:
            writer.emit("status", state="stopped", error=None)
            break
    else:
        writer.emit("status", state="finished", error=None)
    writer.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
