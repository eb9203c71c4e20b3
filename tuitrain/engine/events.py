"""The event writer: one JSON object per line in `RUN_DIR/metrics.jsonl`, one write per event.

Durability: `emit` hands the whole line to the kernel with a single `write(2)` on an
`O_APPEND` descriptor before it returns (no user-space buffer), so a reader tailing the
file has each line as soon as `emit` returns, and a `kill -9` of the trainer loses no event
that `emit` returned from. Nothing is fsynced: a power loss may still drop the last lines.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1

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


def encode_event(event: dict[str, Any]) -> bytes:
    """The event as one UTF-8 JSON line; nan/inf become null and unknown types their `str`."""
    try:
        text = _ENCODER.encode(event)
    except (TypeError, ValueError):  # nan/inf, or a value JSON has no type for
        text = _ENCODER.encode(_json_safe(event))
    return (text + "\n").encode("utf-8")


class EventWriter:
    """Appends events to `metrics.jsonl`; a no-op on ranks other than 0 (`enabled=False`)."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._fd: int | None = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                               0o666)

    def emit(self, kind: str, **fields: Any) -> dict | None:
        """Write one event (`kind`, `t`, then `fields`) as a line; it is in the file on return."""
        if not self.enabled or self._fd is None:
            return None
        event = {"kind": kind, "t": round(time.time(), 3), **fields}
        if kind == "start":
            event = {"v": SCHEMA_VERSION, **event}
        data = encode_event(event)
        written = os.write(self._fd, data)
        while written < len(data):  # a short write (signal, nearly full disk): write the rest
            written += os.write(self._fd, data[written:])
        return event

    def close(self) -> None:
        """Close the file; later `emit` calls do nothing."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
