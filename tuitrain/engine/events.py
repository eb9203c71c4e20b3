"""The event writer: one JSON object per line in `RUN_DIR/metrics.jsonl`, one write per event.

Durability: `emit` hands the whole line to the kernel with a single `write(2)` on an
`O_APPEND` descriptor before it returns (no user-space buffer), so a reader tailing the
file has each line as soon as `emit` returns, and a `kill -9` of the trainer loses no event
that `emit` returned from. Nothing is fsynced: a power loss may still drop the last lines.

A write that fails (a full disk, a quota) never ends training: the event is counted as lost,
a partly written line is cut back off the file, and the first write that works again is
preceded by one `warning` event saying how many were lost (`lost_events`, the running count).
A writer that opens a log whose last byte is not a newline (a trainer killed mid-line, a
disk that filled) starts on a fresh line. A `warning` with `code = "checkpoint_save_failed"`
carries the running `failed_saves` count; `status` events carry both counts. No line is ever
longer than `tuitrain.layout.MAX_EVENT_BYTES`: long strings are cut, then an oversized
`config` is left out.
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

from tuitrain.errors import TuitrainError
from tuitrain.layout import (
    EXIT_DIVERGED_UNRECORDED, EXIT_FINISHED_UNRECORDED, EXIT_OK, EXIT_STOPPED_UNRECORDED, MAX_EVENT_BYTES, METRICS, file_mode,
)

SCHEMA_VERSION = 1
# Strings longer than this are cut in an event that would otherwise be too long.
MAX_EVENT_STRING = 4096
SAVE_FAILED = "checkpoint_save_failed"

# One encoder for every event: `json.dumps` with `separators` builds a new one per call.
# `allow_nan=False` makes nan/inf raise, and the event is then encoded through `_json_safe`.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _json_safe(value: Any) -> Any:
    """Floats that JSON cannot hold (nan, inf) become None; tuples become lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"…[{len(value) - limit} characters cut]"
    if isinstance(value, dict):
        return {k: _cut_strings(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, limit) for v in value]
    return value


def encode_event(event: dict[str, Any]) -> bytes:
    """The event as one UTF-8 JSON line of at most MAX_EVENT_BYTES; nan/inf become null and
    unknown types their `str`."""
    try:
        text = _ENCODER.encode(event)
    except (TypeError, ValueError):  # nan/inf, or a value JSON has no type for
        event = _json_safe(event)
        text = _ENCODER.encode(event)
    data = (text + "\n").encode("utf-8")
    if len(data) <= MAX_EVENT_BYTES:
        return data
    event = _cut_strings(_json_safe(event), MAX_EVENT_STRING)
    data = (_ENCODER.encode(event) + "\n").encode("utf-8")
    if len(data) > MAX_EVENT_BYTES and "config" in event:
        event = {**event, "config": {"omitted": "too large for an event; see preset.toml"}}
        data = (_ENCODER.encode(event) + "\n").encode("utf-8")
    if len(data) > MAX_EVENT_BYTES:
        keep = {k: event[k] for k in ("v", "kind", "t", "step", "state") if k in event}
        data = (_ENCODER.encode({**keep, "truncated": True}) + "\n").encode("utf-8")
    return data


class EventWriter:
    """Appends events to `metrics.jsonl`; a no-op on ranks other than 0 (`enabled=False`)."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(run_dir) / METRICS
        self.enabled = enabled
        self._fd: int | None = None
        self.lost = 0  # events not written, in this writer's life
        self.failed_saves = 0
        self._lost_untold = 0  # lost since the last warning that told of them
        self._last_error: str | None = None
        self._needs_newline = False
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NONBLOCK,
                               file_mode())
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):  # a FIFO would block the trainer once full
                os.close(self._fd)
                self._fd = None
                raise TuitrainError(f"{self.path}: not a regular file (a FIFO or a device?); "
                                    "move it away: the trainer appends its events there")
            self._needs_newline = self._ends_mid_line()

    def _ends_mid_line(self) -> bool:
        size = os.fstat(self._fd).st_size
        return size > 0 and os.pread(self._fd, 1, size - 1) != b"\n"

    def emit(self, kind: str, **fields: Any) -> dict | None:
        """Write one event (`kind`, `t`, then `fields`) as a line; it is in the file on return
        (or counted as lost when the write failed)."""
        if not self.enabled or self._fd is None:
            return None
        if kind == "warning" and fields.get("code") == SAVE_FAILED:
            self.failed_saves += 1
            fields["failed_saves"] = self.failed_saves
        if kind == "status":
            fields.setdefault("failed_saves", self.failed_saves)
            fields.setdefault("lost_events", self.lost)
        event = {"kind": kind, "t": round(time.time(), 3), **fields}
        if kind == "start":
            event = {"v": SCHEMA_VERSION, **event}
        if self._lost_untold and not self._tell_lost(fields.get("step")):
            self._lose()
            return event
        if not self._write(encode_event(event)):
            self._lose()
        return event

    @property
    def last_write_failed(self) -> bool:
        """Whether the latest event could not be written."""
        return self._lost_untold > 0

    def _lose(self) -> None:
        self.lost += 1
        self._lost_untold += 1

    def _tell_lost(self, step: Any) -> bool:
        event = {"kind": "warning", "t": round(time.time(), 3), "step": step,
                 "message": f"{self._lost_untold} event(s) could not be written to {METRICS} "
                            f"({self._last_error}); they are missing from the run's history",
                 "lost_events": self.lost, "failed_saves": self.failed_saves}
        if not self._write(encode_event(event)):
            return False
        self._lost_untold = 0
        return True

    def _write(self, data: bytes) -> bool:
        """Append `data` whole, or leave the file as it was; False when the write failed."""
        if self._needs_newline:
            data = b"\n" + data
        written = 0
        try:
            while written < len(data):  # a short write (signal, nearly full disk): write the rest
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            self._last_error = exc.strerror or str(exc)
            if written:  # no half line for readers (or a resume) to trip on; this is the only writer
                try:
                    os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                except OSError:
                    self._needs_newline = True
            return False
        self._needs_newline = False
        return True

    def close(self) -> None:
        """Close the file; later `emit` calls do nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class TolerantStream(io.TextIOBase):
    """A text stream over another whose writes may fail (stdout.log on a full disk): a failed
    write is counted in `lost` and never raised, so a progress line cannot end training."""

    def __init__(self, inner: Any) -> None:
        super().__init__()
        self.inner = inner
        self.lost = 0

    def write(self, text: str) -> int:
        try:
            return self.inner.write(text)
        except OSError:
            self.lost += 1
            return len(text)

    def flush(self) -> None:
        try:
            self.inner.flush()
        except OSError:
            self.lost += 1

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.inner.fileno()

    def isatty(self) -> bool:
        try:
            return self.inner.isatty()
        except (OSError, ValueError):
            return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.inner, "encoding", "utf-8")

    def __getattr__(self, name: str) -> Any:  # buffer, errors, line_buffering … of the stream inside
        return getattr(self.inner, name)


def tolerate_output_errors() -> None:
    """Make this process's stdout and stderr `TolerantStream`s (once)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, TolerantStream):
            setattr(sys, name, TolerantStream(stream))


def exit_code(state: str, writer: EventWriter) -> int:
    """The trainer's exit code after its final `status` event: 0, or, when that event could not
    be written, the code that tells the supervisor the outcome (`layout.EXIT_UNRECORDED`)."""
    if not writer.last_write_failed:
        return EXIT_OK
    if state == "diverged":
        return EXIT_DIVERGED_UNRECORDED
    return EXIT_STOPPED_UNRECORDED if state == "stopped" else EXIT_FINISHED_UNRECORDED
