"""The checkpoints table: the run's checkpoints that exist now, with step, time, size, eval
metric, and its one best checkpoint marked.

The rows are the complete `checkpoint-N/` folders on disk (`on_disk`, listed by the
dashboard's watcher thread with `list_on_disk`), so a checkpoint rotation removed, a rewind set
aside or a person deleted is gone from the table; the `checkpoint` events add when each was
written and the metric. The best is the one the run's last checkpoint event names
(`best_checkpoint`, transformers' `best_model_checkpoint`), when it still exists.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tuitrain.layout import checkpoint_name, complete_checkpoints

# (label, width) of each column; widths fit a 7-digit step and a GiB-sized checkpoint.
COLUMNS = (("checkpoint", 18), ("step", 7), ("time", 14), ("size", 9), ("eval", 8), ("best", 6))


@dataclass(frozen=True)
class OnDisk:
    """A complete checkpoint folder: its name, step, modification time and size in bytes."""

    name: str
    step: int
    mtime: float
    size: int


def list_on_disk(run_dir: Path) -> tuple[OnDisk, ...]:
    """The run's complete checkpoints now, oldest first (a few `stat`s each: call it off the
    UI thread)."""
    found = []
    for path in complete_checkpoints(run_dir):
        try:
            size = sum(e.stat(follow_symlinks=False).st_size for e in os.scandir(path)
                       if e.is_file(follow_symlinks=False))
            mtime = path.stat().st_mtime
        except OSError:  # removed while listed: gone
            continue
        found.append(OnDisk(path.name, int(path.name.rsplit("-", 1)[1]), mtime, size))
    return tuple(found)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read `name` from an event dict or a record object."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _folder(value: Any) -> str | None:
    return str(value).rstrip("/").rsplit("/", 1)[-1] if value else None


def best_checkpoint(events: list) -> str | None:
    """The run's best checkpoint as its last checkpoint event names it (`best_checkpoint`);
    for the events of an older engine, the last one written as a new best (`is_best`)."""
    for event in reversed(events):
        if isinstance(event, dict) and "best_checkpoint" in event:
            return _folder(event["best_checkpoint"])
    for event in reversed(events):
        if field(event, "is_best"):
            return _folder(field(event, "path")) or checkpoint_name(field(event, "step") or 0)
    return None


def human_bytes(n: Any) -> str:
    """`1536` → `1.5 KiB`; unknown sizes show as `?`."""
    if not isinstance(n, (int, float)):
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return "?"


class CheckpointTable(DataTable):
    """One row per checkpoint on disk; the highlighted row's name is `highlighted_checkpoint`."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id, classes=classes)
        self._shown: list[tuple] = []

    def on_mount(self) -> None:
        # Fixed widths: measured widths are only applied when the table next goes idle, so
        # a frame drawn in between would pair a narrow header with wide rows.
        for label, width in COLUMNS:
            self.add_column(label, width=width)

    @property
    def highlighted_checkpoint(self) -> str | None:
        """Directory name of the highlighted checkpoint (e.g. `checkpoint-100`), or None."""
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key((self.cursor_row, 0)).row_key.value)

    @property
    def latest_checkpoint(self) -> str | None:
        """The newest checkpoint listed, or None."""
        return self._shown[-1][0] if self._shown else None

    def show(self, events: list, on_disk: tuple[OnDisk, ...], eval_by_step: dict[int, float]) -> None:
        """Show the checkpoints `on_disk`, with what their `events` say; the rows are replaced
        only when something shown changed."""
        written = {field(e, "step"): e for e in events}
        best = best_checkpoint(events)
        rows = []
        for ckpt in on_disk:
            event = written.get(ckpt.step, {})
            t = field(event, "t")
            t = t if isinstance(t, (int, float)) else ckpt.mtime
            size = field(event, "bytes")
            value = eval_by_step.get(ckpt.step)
            rows.append((ckpt.name, str(ckpt.step), time.strftime("%m-%d %H:%M:%S", time.localtime(t)),
                         human_bytes(size if isinstance(size, (int, float)) else ckpt.size),
                         f"{value:.4g}" if value is not None else "–", ckpt.name == best))
        if rows == self._shown:
            return
        self._shown = rows
        keep = self.cursor_row
        self.clear()
        for name, step, when, size, value, is_best in rows:
            self.add_row(Text(name), step, when, size, value,
                         Text("★ best", style="bold green") if is_best else Text(""), key=name)
        if rows:
            self.move_cursor(row=min(max(keep, 0), len(rows) - 1))
