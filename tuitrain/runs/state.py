"""A run's real state, from `run.json`, process liveness and the last `status` event.

A pid alone is not proof of life: pids are reused, so the recorded process start time is
compared with the live process's. A trainer that is gone without a final `status` event
failed, and the tail of its `stdout.log` says why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil

from tuitrain.runs.rundir import METRICS, STDOUT_LOG

# Seconds of slack when comparing a recorded process start time with psutil's.
_START_TOLERANCE = 1.0


def process_start_time(pid: int) -> float | None:
    """The start time (epoch seconds) of process `pid`, or None when it does not exist."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def is_alive(pid: int | None, started_at: float | None) -> bool:
    """Whether `pid` still runs and is the same process that started at `started_at`."""
    if not pid:
        return False
    try:
        proc = psutil.Process(int(pid))
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False
    if started_at is None:
        return True
    return abs(created - float(started_at)) <= _START_TOLERANCE


def _read_tail(path: Path, max_bytes: int) -> bytes | None:
    """The last `max_bytes` bytes of a file (None when it cannot be read)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - max_bytes))
            return fh.read()
    except OSError:
        return None


def log_tail(run_dir: Path, lines: int = 20, max_bytes: int = 16384) -> str:
    """The last `lines` lines of the run's `stdout.log` (empty when there is none)."""
    data = _read_tail(Path(run_dir) / STDOUT_LOG, max_bytes)
    if data is None:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])


def last_status_event(run_dir: Path, max_bytes: int = 65536) -> dict[str, Any] | None:
    """The last `status` event of the run's current segment (reads the file's tail only)."""
    data = _read_tail(Path(run_dir) / METRICS, max_bytes)
    if data is None:
        return None
    for raw in reversed(data.splitlines()):
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        if event.get("kind") == "start":
            return None  # a new segment began after any earlier status
        if event.get("kind") == "status":
            return event
    return None


def derive_state(run_dir: Path, info: dict[str, Any]) -> tuple[str, str | None]:
    """(state, error) of the run whose `run.json` is `info`."""
    recorded = info.get("state") or "queued"
    if recorded in ("finished", "failed", "stopped"):
        return recorded, info.get("error")
    supervisor_alive = is_alive(info.get("supervisor_pid"), info.get("supervisor_started"))
    trainer_alive = is_alive(info.get("pid"), info.get("pid_started"))
    if trainer_alive or (supervisor_alive and recorded == "queued"):
        status = last_status_event(run_dir)
        if status and status.get("state") == "stopping":
            return "stopping", None
        return recorded if recorded in ("running", "stopping", "queued") else "running", None
    if supervisor_alive:
        # Between the trainer's exit and the supervisor's final write.
        return recorded, None
    if recorded == "queued" and not info.get("supervisor_pid"):
        return "queued", None
    status = last_status_event(run_dir)
    if status and status.get("state") in ("finished", "stopped"):
        return status["state"], None
    if status and status.get("state") == "failed":
        return "failed", status.get("error") or log_tail(run_dir)
    return "failed", log_tail(run_dir) or "the trainer exited without a final status"
