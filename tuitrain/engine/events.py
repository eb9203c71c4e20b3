"""The event writer: one JSON object per line in `RUN_DIR/metrics.jsonl`, flushed per event."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


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


class EventWriter:
    """Appends events to `metrics.jsonl`; a no-op on ranks other than 0 (`enabled=False`)."""

    def __init__(self, run_dir: str | os.PathLike, enabled: bool = True) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        self.enabled = enabled
        self._file = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")

    def emit(self, kind: str, **fields: Any) -> dict | None:
        """Write one event (`kind`, `t`, then `fields`) as a line and flush it."""
        if not self.enabled or self._file is None:
            return None
        event = {"kind": kind, "t": round(time.time(), 3), **fields}
        if kind == "start":
            event = {"v": SCHEMA_VERSION, **event}
        self._file.write(json.dumps(_json_safe(event), separators=(",", ":")) + "\n")
        self._file.flush()
        return event

    def close(self) -> None:
        """Close the file; later `emit` calls do nothing."""
        if self._file is not None:
            self._file.close()
            self._file = None
