"""A run's real state, from `run.json`, the run's owner lock and the last `status` event.

A run is alive while its owner lock is held (`tuitrain.runlock`): the kernel holds it for as
long as the supervisor or the trainer lives and drops it when they are gone, so neither a
reused pid nor a stepped wall clock can fool it. A run of an older tuitrain (no lock file)
falls back to the recorded process identities (pid, start ticks since boot, boot id). A run
that is gone without a final `status` event failed, and the tail of its `stdout.log` says why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuitrain import procid, runlock, safeio
from tuitrain.layout import ENDED_STATES, METRICS, STDOUT_LOG

__all__ = ["derive_state", "is_alive", "last_status_event", "log_tail", "identity_of", "run_alive"]


def identity_of(info: dict[str, Any], role: str) -> procid.Identity | None:
    """The recorded identity of the run's `supervisor` or `trainer` (None when not recorded)."""
    return procid.Identity.from_record(info.get(role))


def is_alive(identity: procid.Identity | None) -> bool:
    """Whether the process `identity` names still runs (same boot, same start ticks)."""
    return procid.running(identity) is not None


def run_alive(run_dir: Path, info: dict[str, Any]) -> bool:
    """Whether anything of the run (launcher, supervisor or trainer) is alive."""
    held = runlock.is_held(run_dir)
    if held is not None:
        return held
    return is_alive(identity_of(info, "trainer")) or is_alive(identity_of(info, "supervisor"))


def _read_tail(path: Path, max_bytes: int) -> bytes | None:
    """The last `max_bytes` bytes of a regular file (None when it cannot be read safely)."""
    try:
        return safeio.read_tail(path, max_bytes)
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
        except (ValueError, RecursionError):
            continue
        if not isinstance(event, dict):
            continue
        if event.get("kind") == "start":
            return None  # a new segment began after any earlier status
        if event.get("kind") == "status":
            return event
    return None


def _owned_again(run_dir: Path, info: dict[str, Any]) -> tuple[str, None] | None:
    """For a run recorded as ended whose lock is held: `queued` while a launcher starts it
    again, `running` while a trainer it did not record (one started by hand) owns it; None
    while its own supervisor is only finishing."""
    own = {identity_of(info, "supervisor"), identity_of(info, "trainer")}
    for role, identity in runlock.holders(run_dir).items():
        if identity not in own and is_alive(identity):
            return ("queued" if role == "launcher" else "running"), None
    return None


def derive_state(run_dir: Path, info: dict[str, Any]) -> tuple[str, str | None]:
    """(state, error) of the run whose `run.json` is `info`."""
    recorded = info.get("state") or "queued"
    if run_alive(run_dir, info):
        status = last_status_event(run_dir)
        reported = status.get("state") if status else None
        if reported == "stopping":
            return "stopping", None
        if recorded in ENDED_STATES:
            return _owned_again(run_dir, info) or (recorded, info.get("error"))
        return recorded, None
    if recorded in ENDED_STATES:
        return recorded, info.get("error")
    # Nothing of the run is alive, and no supervisor recorded how it ended.
    status = last_status_event(run_dir)
    reported = status.get("state") if status else None
    if reported in ("finished", "stopped", "diverged"):
        return reported, None
    if reported == "failed":
        return "failed", status.get("error") or log_tail(run_dir)
    if recorded == "stopping":
        return "stopped", None  # stopped before it wrote a status (during start-up)
    if recorded == "queued" and not info.get("supervisor") and not info.get("supervisor_pid"):
        if info.get("sweep"):
            return "queued", None  # a sweep's member waiting for its queue to start it
        return "failed", "the run never started (its launcher ended before starting the trainer)"
    return "failed", log_tail(run_dir) or "the trainer exited without a final status"
