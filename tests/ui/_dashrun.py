"""Run directories written by the dashboard/compare tests (no training involved)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from textual.app import App

NASTY = "\x1b[31mRED\x1b[0m [bold]not bold[/bold] \x07bell"


def write_run(root: Path, name: str, steps: int = 200, *, lr: float = 3e-4, state: str = "finished",
              corrupt: bool = False, preset_extra: str = "") -> Path:
    """A finished-looking run with train/eval/checkpoint/sample/status events."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({
        "id": name, "name": name, "state": state, "pid": None, "launcher": "local",
        "created": 1000.0, "started": 1000.0, **({"ended": 1000.0 + steps} if state == "finished" else {})}))
    (run / "preset.toml").write_text(
        f'name = "{name}"\n[task]\nname = "quickstart"\n[args]\nlearning_rate = {lr}\n'
        f"max_steps = {steps}\nper_device_train_batch_size = 8\n{preset_extra}")
    lines = [json.dumps({"v": 1, "kind": "start", "t": 1000.0, "run": name, "world_size": 1,
                         "max_steps": steps, "resumed_from": None, "step": 0, "config": {}})]
    for step in range(1, steps + 1):
        lines.append(json.dumps({"kind": "train", "t": 1000.0 + step, "step": step, "epoch": step / 100,
                                 "loss": 3.0 * math.exp(-step / 80) + 0.1 * math.sin(step), "learning_rate": lr * (1 - step / (steps + 1)),
                                 "samples_per_second": 100.0, "tokens_per_second": 6400.0,
                                 "gpu_mem_allocated_gib": 1.25, "gpu_mem_reserved_gib": 2.0}))
        if step % 50 == 0:
            lines.append(json.dumps({"kind": "eval", "t": 1000.0 + step, "step": step, "eval_loss": 3.0 * math.exp(-step / 90)}))
            lines.append(json.dumps({"kind": "checkpoint", "t": 1000.0 + step, "step": step,
                                     "path": f"checkpoint-{step}", "bytes": 4096 * step, "is_best": step == 100}))
            make_checkpoint(run, step)
            lines.append(json.dumps({"kind": "sample", "t": 1000.0 + step, "step": step, "text": f"sample at {step} {NASTY}"}))
        if corrupt and step == 10:
            lines.append('{"kind": "train", "step": 11, "loss": 2.')
    if state == "finished":
        lines.append(json.dumps({"kind": "status", "t": 1000.0 + steps, "state": "finished", "error": None}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "stdout.log").write_text(f"step 1 loss 3.0\n{NASTY}\nlast line\n")
    return run


def make_checkpoint(run: Path, step: int) -> Path:
    """A complete `checkpoint-N/` folder (the files `tuitrain.layout` requires, a few bytes each)."""
    from tuitrain.layout import CHECKPOINT_FILES

    folder = run / f"checkpoint-{step}"
    folder.mkdir(exist_ok=True)
    for name in CHECKPOINT_FILES:
        (folder / name).write_text("{}")
    return folder


def append_events(run: Path, events: list[dict]) -> None:
    with open(run / "metrics.jsonl", "a") as fh:
        for event in events:
            fh.write(json.dumps(event) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


class ScreenApp(App):
    """A bare app that opens one screen (stands in for the full app in these tests)."""

    def __init__(self, make_screen) -> None:
        super().__init__()
        self._make_screen = make_screen

    def on_mount(self) -> None:
        self.push_screen(self._make_screen())


def steady_telemetry(monkeypatch) -> None:
    """No GPU and three fixed host readings, a second apart, from the first sample on: the
    system panel is the same on every machine however long a test takes."""
    import sys

    from tuitrain.telemetry import Reading, TelemetrySampler
    from tuitrain.telemetry.host import HostSample

    monkeypatch.setitem(sys.modules, "pynvml", None)
    fixed = [Reading(1000.0 + i, (), HostSample(12.0 + 4 * i, 3.5, 16.0)) for i in range(3)]

    def three_readings(sampler):
        sampler.probe.sample()  # NVML is asked (and found missing) as in a real sample
        sampler.readings.clear()
        sampler.readings.extend(fixed)
        return fixed[-1]

    monkeypatch.setattr(TelemetrySampler, "sample", three_readings)


def sync(test):
    """Run an async test body with asyncio (no async pytest plugin needed)."""
    import asyncio
    import functools

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        asyncio.run(test(*args, **kwargs))

    return wrapper
