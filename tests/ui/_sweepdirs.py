"""Sweep directories written by the UI tests themselves: `sweep.json` and member run
directories with their events, as the sweep queue leaves them (no training involved).

A member that is `running` or `queued` is alive the way a real one is: its directory's
owner lock is held (here, by the test itself, through `LiveRuns`).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import time
from pathlib import Path

from tuitrain.layout import OWNER_LOCK

T0 = 1_764_300_000.0


def member_dir_name(values: dict) -> str:
    """`lr_scheduler_type=cosine`: the varied values by their keys' last part, named as the
    sweep's own expansion names them."""
    from tuitrain.sweeps.expand import member_name

    return member_name(values)


def write_member(sweep_dir: Path, sweep: str, values: dict, *, state: str = "finished", steps: int = 40,
                 max_steps: int = 40, lr: float = 1e-3, scale: float = 1.0, started: float = T0,
                 diverge_at: int | None = None) -> Path:
    """One member's run directory: run.json with its sweep, train/eval/status events."""
    name = member_dir_name(values)
    run = sweep_dir / name
    if state in ("running", "queued"):
        started = time.time() - steps  # logging now (an old last event would read as stalled)
    run.mkdir(parents=True)
    ended = started + steps if state not in ("running", "queued") else None
    (run / "run.json").write_text(json.dumps({
        "id": name, "name": f"{sweep}/{name}", "state": state, "pid": None, "launcher": "local",
        "preset_name": "quickstart", "created": started, "started": started, "ended": ended,
        "sweep": sweep, "sweep_values": values}))
    (run / "preset.toml").write_text(f'[task]\nname = "quickstart"\n[optimizer]\nlearning_rate = {lr}\n'
                                     f"[core]\nmax_steps = {max_steps}\n")
    events = []
    if state != "queued":
        events.append({"v": 1, "kind": "start", "t": started, "run": name, "world_size": 1, "max_steps": max_steps,
                       "resumed_from": None, "step": 0, "config": {}})
    for step in range(1, steps + 1 if state != "queued" else 1):
        loss = scale * 3.0 * math.exp(-step / 20) + 0.5
        if diverge_at is not None and step >= diverge_at:
            loss = float("nan")
        events.append({"kind": "train", "t": started + step, "step": step, "loss": loss,
                       "learning_rate": lr * (1 - step / (max_steps + 1)), "samples_per_second": 100.0 * scale})
        if step % 10 == 0 and not (diverge_at is not None and step >= diverge_at):
            events.append({"kind": "eval", "t": started + step, "step": step, "eval_loss": loss + 0.1})
    if state in ("finished", "stopped", "failed", "diverged"):
        events.append({"kind": "status", "t": started + steps, "state": state, "error": None})
    (run / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run


def write_sweep(root: Path, name: str, members: list[dict], *, queue: str = "finished", parallel: int = 2,
                axes: dict | None = None, created: float = T0, refused: list[dict] = ()) -> Path:
    """A sweep directory: each of `members` is `write_member`'s keywords plus `values`."""
    sweep_dir = root / name
    sweep_dir.mkdir(parents=True)
    entries = []
    for i, member in enumerate(members):
        member = dict(member)
        values = member.pop("values")
        run = write_member(sweep_dir, name, values, started=created + i, **member)
        entries.append({"name": run.name, "dir": run.name, "values": values})
    grid: dict = {}
    for entry in entries:
        for key, value in entry["values"].items():
            grid.setdefault(key, [])
            if value not in grid[key]:
                grid[key].append(value)
    (sweep_dir / "sweep.json").write_text(json.dumps({
        "format": 1, "name": name, "preset": str(root / "preset.toml"), "created": created,
        "axes": axes or {"grid": grid, "zip": {}, "sample": {}, "set": {}}, "count": None, "seed": None,
        "parallel": parallel, "members": entries, "refused": list(refused),
        "queue": {"state": queue, "pid": None, "host": None}}, indent=2))
    return sweep_dir


class LiveRuns:
    """Hold the owner locks of run (or sweep) directories, as their live processes would."""

    def __init__(self) -> None:
        self.fds: list[int] = []

    def hold(self, path: Path) -> None:
        fd = os.open(Path(path) / OWNER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.fds.append(fd)

    def release(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()


def shootout(root: Path, live: LiveRuns | None = None, name: str = "shoot") -> Path:
    """Six members of a scheduler × warmup grid: 3 finished (one diverged), 2 running, 1 queued."""
    members = [
        {"values": {"optimizer.lr_scheduler_type": "linear", "optimizer.warmup_ratio": 0.0}, "scale": 1.0},
        {"values": {"optimizer.lr_scheduler_type": "linear", "optimizer.warmup_ratio": 0.1}, "scale": 0.8},
        {"values": {"optimizer.lr_scheduler_type": "cosine", "optimizer.warmup_ratio": 0.0}, "scale": 1.2,
         "state": "diverged", "steps": 25, "diverge_at": 22},
        {"values": {"optimizer.lr_scheduler_type": "cosine", "optimizer.warmup_ratio": 0.1}, "scale": 0.9,
         "state": "running", "steps": 20},
        {"values": {"optimizer.lr_scheduler_type": "constant", "optimizer.warmup_ratio": 0.0}, "scale": 1.1,
         "state": "running", "steps": 12},
        {"values": {"optimizer.lr_scheduler_type": "constant", "optimizer.warmup_ratio": 0.1}, "state": "queued",
         "steps": 0},
    ]
    sweep_dir = write_sweep(root, name, members, queue="running")
    if live is not None:
        live.hold(sweep_dir)
        for entry in json.loads((sweep_dir / "sweep.json").read_text())["members"][3:]:
            live.hold(sweep_dir / entry["dir"])
    return sweep_dir
