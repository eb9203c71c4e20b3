"""A run's whole history, kept current from its event stream: series, checkpoints, samples.

A resumed run appends a new `start` event with the step it resumed from; events of the
earlier segment past that step are dropped, so the curve is the one the run really followed.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from tuitrain.layout import UNREADABLE
from tuitrain.runs.reader import MetricsReader
from tuitrain.runs.rundir import METRICS, RunDirError, read_run_json
from tuitrain.runs.series import Series
from tuitrain.runs.state import derive_state
from tuitrain.runs.statetext import RECENT_GAPS, integrity_counts, state_text, stalled_for

TRAIN_SERIES = ("loss", "learning_rate", "grad_norm", "samples_per_second", "tokens_per_second")
_SKIP = {"kind", "t", "step", "epoch", "v"}
# The event schema this reader understands; events of a newer one are skipped and counted.
SCHEMA_VERSION = 1
# Chunks a screen's watcher reads per `update(max_chunks=…)` while a backlog loads, so that
# it lets go of the history lock (and the screen draws) between bites.
CATCH_UP_CHUNKS = 4
# How often `update()` re-derives the state from run.json and process liveness.
_STATE_INTERVAL_S = 1.0


class RunHistory:
    """Everything the dashboard shows of one run; call `update()` on a timer."""

    def __init__(self, run_dir: Path | str, keep_samples: int = 200) -> None:
        self.run_dir = Path(run_dir)
        self.reader = MetricsReader(self.run_dir / METRICS)
        self.newer_skipped = 0
        self.keep_samples = keep_samples
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

    @property
    def skipped(self) -> int:
        """Lines skipped so far: corrupt ones and events of a newer schema version."""
        return self.reader.skipped + self.newer_skipped

    def _series(self, name: str) -> Series:
        found = self.series.get(name)
        if found is None:
            found = self.series[name] = Series(name)
        return found

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
        changed = False
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
            except RunDirError as exc:
                state, error = UNREADABLE, str(exc)
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
                          self.final_status_lost)

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
