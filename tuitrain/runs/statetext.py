"""What a run's state reads as wherever a person looks (`tuitrain ls`, the Runs screen, the
dashboard, the foreground output): the state, or `stalled (no event for 4m)` for a live run
gone quiet, and the integrity counts (`finished · 6 checkpoint saves failed`).

A run is stalled when no event has arrived for much longer than its usual interval between
events: ten times the median gap, twice the longest gap it has shown (an evaluation, a
checkpoint), and at least a minute; before its second event (building the model, loading
data, compiling) the bound is ten minutes.
"""

from __future__ import annotations

from statistics import median
from typing import Iterable

STALL_FLOOR_S = 60.0
STARTUP_STALL_S = 600.0
# Gaps looked at: the recent ones, so a run whose pace changed is judged by its pace now.
RECENT_GAPS = 64


def stall_bound(times: Iterable[float]) -> float:
    """Seconds of silence after which a run whose events came at `times` is stalled."""
    ts = sorted(t for t in times if isinstance(t, (int, float)))
    gaps = [b - a for a, b in zip(ts, ts[1:])][-RECENT_GAPS:]
    if not gaps:
        return STARTUP_STALL_S
    return max(STALL_FLOOR_S, 10 * median(gaps), 2 * max(gaps))


def stalled_for(times: Iterable[float], silence_s: float | None) -> float | None:
    """`silence_s` when it exceeds the run's stall bound, else None."""
    if silence_s is None:
        return None
    times = list(times)
    return silence_s if silence_s > stall_bound(times) else None


def _ago(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def lineage_text(rewinds: list | None, parent: dict | None) -> str:
    """Where a run comes from, as run.json records it: `fork of cosine at 300`,
    `rewound at 300 · 1 abandoned line` (the last rewind's step, and how many lines the run
    left), both, or `` for a run that followed one line."""
    parts = []
    if isinstance(parent, dict) and parent.get("run"):
        at = f" at {parent['step']}" if isinstance(parent.get("step"), int) else ""
        parts.append(f"fork of {parent['run']}{at}")
    rewinds = [r for r in rewinds or () if isinstance(r, dict) and isinstance(r.get("step"), int)]
    if rewinds:
        parts.append(f"rewound at {rewinds[-1]['step']} · "
                     + _count(len(rewinds), "abandoned line", "abandoned lines"))
    return " · ".join(parts)


def state_text(state: str, stalled: float | None = None, failed_saves: int = 0, lost_events: int = 0,
               final_status_lost: bool = False, lineage: str = "") -> str:
    """`running`, `stalled (no event for 4m)`, `finished · 6 checkpoint saves failed`,
    `finished · rewound at 300 · 1 abandoned line` (`lineage`: `lineage_text`) …"""
    if stalled is not None and state in ("running", "stopping", "queued"):
        quiet = f"stalled (no event for {_ago(stalled)})"
        text = quiet if state == "running" else f"{state}, {quiet}"
    else:
        text = state
    notes = []
    if failed_saves:
        notes.append(_count(failed_saves, "checkpoint save failed", "checkpoint saves failed"))
    if lost_events:
        notes.append(_count(lost_events, "event lost", "events lost"))
    if final_status_lost:
        notes.append("its last events were lost")
    if lineage:
        notes.append(lineage)
    return " · ".join([text, *notes])


def integrity_counts(event: dict) -> tuple[int | None, int | None]:
    """(failed_saves, lost_events) an event reports (cumulative in its segment), or None each."""
    out = []
    for key in ("failed_saves", "lost_events"):
        value = event.get(key)
        out.append(value if type(value) is int and value >= 0 else None)
    return out[0], out[1]
