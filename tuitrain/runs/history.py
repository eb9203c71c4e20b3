"""A run's whole history, kept current from its event stream: series, checkpoints, samples.

A resumed run appends a new `start` event with the step it resumed from; events of the
earlier segment past that step are dropped, so the curve is the one the run really followed.
A rewind (`runs.lineage`) is such a start too; the loss of the line it left is kept in
`abandoned` (decimated), to be drawn faded on request. A fork's history also reads its
parent's line up to the fork's checkpoint (`parent_series`), from the parent's event log as
it was when the fork was made.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from tuitrain.layout import UNREADABLE
from tuitrain.runs.reader import MetricsReader
from tuitrain.runs.rundir import METRICS, RunDirError, read_run_json, records
from tuitrain.runs.series import Series
from tuitrain.runs.state import derive_state
from tuitrain.runs.statetext import RECENT_GAPS, integrity_counts, lineage_text, state_text, stalled_for

TRAIN_SERIES = ("loss", "learning_rate", "grad_norm", "samples_per_second", "tokens_per_second")
_SKIP = {"kind", "t", "step", "epoch", "v"}
# The event schema this reader understands; events of a newer one are skipped and counted.
SCHEMA_VERSION = 1
# Chunks a screen's watcher reads per `update(max_chunks=…)` while a backlog loads, so that
# it lets go of the history lock (and the screen draws) between bites.
CATCH_UP_CHUNKS = 4
# How often `update()` re-derives the state from run.json and process liveness.
_STATE_INTERVAL_S = 1.0
# Lines left by rewinds kept to draw (the most recent ones).
MAX_ABANDONED = 8
# How far back a fork's parent segment goes: a fork of a fork of … this many runs.
MAX_ANCESTORS = 4
# The series a fork's chart draws of its parent's line.
PARENT_SERIES = ("loss", "eval_loss", "learning_rate")


class RunHistory:
    """Everything the dashboard shows of one run; call `update()` on a timer."""

    def __init__(self, run_dir: Path | str, keep_samples: int = 200, *, follow_parent: bool = True,
                 limit: int | None = None, depth: int = 0) -> None:
        self.run_dir = Path(run_dir)
        # `limit`: read the event log up to this byte only (a fork's view of its parent)
        self.reader = MetricsReader(self.run_dir / METRICS, limit)
        self.newer_skipped = 0
        self.keep_samples = keep_samples
        self.follow_parent = follow_parent and depth < MAX_ANCESTORS
        self.depth = depth
        self.rewinds: list[dict[str, Any]] = []  # run.json's, oldest first
        self.parent: dict[str, Any] | None = None  # run.json's `parent` of a fork
        # The parent's line up to the fork's checkpoint (its own parent's before it), by series name.
        self.parent_series: dict[str, Series] = {}
        self._parent_history: RunHistory | None = None
        self.parent_ready = False  # every ancestor's log read (or none to read)
        self._reset()
        self.state: str = "queued"
        self.error: str | None = None
        self.final_status_lost = False
        self._state_checked = 0.0
        # When the last event arrived (monotonic), and how old it already was then (wall clock).
        self._arrived: float | None = None
        self._age_at_arrival = 0.0

    def _reset(self) -> None:
        self.series: dict[str, Series] = {}
        self.checkpoints: list[dict[str, Any]] = []
        self.samples: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.start: dict[str, Any] | None = None
        self.segments = 0
        self.last_step = 0
        self.max_steps: int | None = None
        self.status: dict[str, Any] | None = None
        self.summary: dict[str, Any] | None = None  # the end-of-training summary event
        self._rate: list[tuple[float, int]] = []
        self.failed_saves = 0
        self.lost_events = 0
        self._times: deque[float] = deque(maxlen=RECENT_GAPS + 1)
        self.abandoned: list[Series] = []  # the loss of each line a rewind left, oldest first
        self._abandoned_keys: set[Any] = set()

    @property
    def skipped(self) -> int:
        """Lines skipped so far: corrupt ones and events of a newer schema version."""
        return self.reader.skipped + self.newer_skipped

    def _series(self, name: str) -> Series:
        found = self.series.get(name)
        if found is None:
            found = self.series[name] = Series(name)
        return found

    def _abandon(self, step: int, key: Any) -> None:
        """Keep the loss past `step` as an abandoned line (once per rewind: `key`)."""
        if key in self._abandoned_keys:
            return
        self._abandoned_keys.add(key)
        loss = self.series.get("loss")
        line = loss.sketch(after=step) if loss is not None else None
        if line is not None and len(line):
            self.abandoned.append(line)
            del self.abandoned[:-MAX_ABANDONED]

    def _resume_at(self, step: int) -> None:
        for series in self.series.values():
            series.truncate_after(step)
        self.checkpoints = [c for c in self.checkpoints if (c.get("step") or 0) <= step]
        self.samples = [s for s in self.samples if (s.get("step") or 0) <= step]
        self.last_step = step
        self._rate.clear()

    def ingest(self, event: dict[str, Any]) -> None:
        """Apply one event (one of a newer schema version is counted in `skipped` instead)."""
        version = event.get("v", SCHEMA_VERSION)
        if type(version) is int and version > SCHEMA_VERSION:
            self.newer_skipped += 1
            return
        kind = event.get("kind")
        step = event.get("step")
        if isinstance(event.get("t"), (int, float)):
            self._times.append(float(event["t"]))
        saves, lost = integrity_counts(event)
        self.failed_saves = saves if saves is not None else self.failed_saves
        self.lost_events = lost if lost is not None else self.lost_events
        if kind == "train" or kind == "eval":
            if not isinstance(step, (int, float)):
                return
            for key, value in event.items():
                if key in _SKIP or type(value) not in (int, float):
                    continue
                name = key if kind == "train" or key.startswith("eval_") else f"eval_{key}"
                self._series(name).append(step, value)
            if kind == "train":
                self.last_step = max(self.last_step, int(step))
                if isinstance(event.get("t"), (int, float)):
                    self._rate.append((float(event["t"]), int(step)))
                    del self._rate[:-20]
        elif kind == "start":
            self.segments += 1
            self.start = event
            self.failed_saves = self.lost_events = 0
            self._times.clear()
            if isinstance(event.get("t"), (int, float)):
                self._times.append(float(event["t"]))
            if isinstance(event.get("max_steps"), int):
                self.max_steps = event["max_steps"]
            self.status = self.summary = None
            resumed = event.get("step")
            # Any later segment (a resume, or a restart from scratch after a crash before the
            # first checkpoint) replaces the earlier segment's events past its step.
            if isinstance(resumed, int) and (event.get("resumed_from") is not None or self.segments > 1):
                rewound = event.get("rewound")
                if isinstance(rewound, dict):
                    self._abandon(resumed, rewound.get("folder"))
                self._resume_at(resumed)
        elif kind == "checkpoint":
            self.checkpoints.append(event)
        elif kind == "sample":
            self.samples.append(event)
            del self.samples[:-self.keep_samples]
        elif kind == "status":
            self.status = event
        elif kind == "summary":
            self.summary = event
        elif kind == "warning":
            self.warnings.append(event)
            del self.warnings[:-self.keep_samples]

    @property
    def behind(self) -> bool:
        """True when the last `update()` stopped before the end of the event file."""
        return self.reader.behind

    def update(self, max_chunks: int | None = None) -> bool:
        """Read new events (and refresh the state now and then); True when anything changed.

        Events are read and applied a chunk of `CHUNK_BYTES` at a time, so a long backlog
        never sits decoded in memory whole; all of them, or at most `max_chunks` chunks
        (then `behind` tells whether to call again at once).
        """
        changed = self._read_parent(max_chunks)
        for events in self.reader.catch_up(max_chunks):
            if self.reader.restarts != getattr(self, "_restarts_seen", 0):
                self._restarts_seen = self.reader.restarts
                self._reset()
                changed = True
            for event in events:
                self.ingest(event)
            if events:
                self._arrived = time.monotonic()
                self._age_at_arrival = max(0.0, time.time() - self._times[-1]) if self._times else 0.0
            changed = changed or bool(events)
            del events  # before the next chunk is decoded: one chunk alive at a time
        now = time.monotonic()
        if changed or now - self._state_checked >= _STATE_INTERVAL_S:
            self._state_checked = now
            try:
                info = read_run_json(self.run_dir)
                state, error = derive_state(self.run_dir, info)
                self.final_status_lost = bool(info.get("final_status_lost"))
                changed = self._follow_lineage(info) or changed
            except RunDirError as exc:
                state, error = UNREADABLE, str(exc)
            self.parent_ready = self.parent_ready or self._parent_history is None  # no parent to read
            if self.reader.error:
                state, error = UNREADABLE, self.reader.error
            if (state, error) != (self.state, self.error):
                self.state, self.error = state, error
                changed = True
            text = self.state_text  # a run going quiet changes it with no new event
            if text != getattr(self, "_text_seen", None):
                self._text_seen = text
                changed = True
        return changed

    def _follow_lineage(self, info: dict[str, Any]) -> bool:
        """Apply run.json's lineage: a rewind whose new line has not written its `start` event
        yet (or never will: it failed first) cuts the line now; a fork's parent is found.
        True when the history changed."""
        changed = False
        self.rewinds = records(info.get("rewinds"))
        last = self.rewinds[-1] if self.rewinds else None
        if (last is not None and isinstance(last.get("step"), int) and not self.behind
                and last.get("folder") not in self._abandoned_keys):
            self._abandon(last["step"], last.get("folder"))
            self._resume_at(last["step"])
            changed = True
        parent = info.get("parent")
        if isinstance(parent, dict) and self.parent is None:
            self.parent = parent
            where, limit = parent.get("run_dir"), parent.get("metrics_bytes")
            if self.follow_parent and isinstance(where, str) and isinstance(parent.get("step"), int):
                self._parent_history = RunHistory(where, keep_samples=1, limit=limit if isinstance(limit, int) else None,
                                                  depth=self.depth + 1)
        return changed

    def _read_parent(self, max_chunks: int | None) -> bool:
        """Read on in the parent's log; once every ancestor's is read, keep their line up to
        the fork's step (`parent_series`) and let the rest go. True when that happened."""
        parent = self._parent_history
        if parent is None:
            return False
        parent.update(max_chunks)
        if parent.behind or not parent.parent_ready or not parent._state_checked:
            return False
        cut = self.parent["step"]
        for name in PARENT_SERIES:
            joined = _joined(parent.parent_series.get(name), parent.series.get(name), cut)
            if len(joined):
                self.parent_series[name] = joined
        self._parent_history, self.parent_ready = None, True
        return True

    @property
    def stalled_for(self) -> float | None:
        """Seconds without an event, when that is much longer than the run's usual interval
        (measured on the monotonic clock since the last event arrived)."""
        if self.state not in ("running", "stopping"):
            return None
        if self._arrived is None:
            return None
        silence = time.monotonic() - self._arrived + self._age_at_arrival
        return stalled_for(self._times, silence)

    @property
    def state_text(self) -> str:
        """The state as `tuitrain ls` and the Runs screen show it (`runs.statetext`)."""
        return state_text(self.state, self.stalled_for, self.failed_saves, self.lost_events,
                          self.final_status_lost, lineage_text(self.rewinds, self.parent))

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the recent step rate, while the run is active and not stalled."""
        if self.state not in ("running", "stopping") or not self.max_steps or len(self._rate) < 2:
            return None
        if self.stalled_for is not None:
            return None
        (t0, s0), (t1, s1) = self._rate[0], self._rate[-1]
        if s1 <= s0 or t1 <= t0:
            return None
        return max(0.0, (self.max_steps - s1) * (t1 - t0) / (s1 - s0))


def _joined(earlier: Series | None, later: Series | None, upto: int) -> Series:
    """`earlier`'s points, then `later`'s past them, up to step `upto` (an ancestor's line,
    then the parent's own)."""
    out = earlier.sketch(upto=upto) if earlier is not None else Series()
    if later is not None:
        last = out.xs[-1] if len(out.xs) else None
        part = later.sketch(after=last, upto=upto)
        for x, y in zip(part.xs, part.ys):
            out.append(x, y)
    return out
