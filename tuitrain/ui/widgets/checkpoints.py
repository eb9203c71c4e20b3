"""The checkpoints table: step, time, size, eval metric, best marked."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual.widgets import DataTable


# (label, width) of each column; widths fit a 7-digit step and a GiB-sized checkpoint.
COLUMNS = (("checkpoint", 18), ("step", 7), ("time", 14), ("size", 9), ("eval", 8), ("best", 6))


def field(obj: Any, name: str, default: Any = None) -> Any:
    """Read `name` from an event dict or a record object."""
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


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
    """One row per checkpoint; the highlighted row's name is `highlighted_checkpoint`."""

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

    def show(self, checkpoints: list, eval_by_step: dict[int, float], metric: str) -> None:
        """Replace the rows when the checkpoints or their metrics changed."""
        rows = []
        for ckpt in checkpoints:
            step = field(ckpt, "step")
            name = str(field(ckpt, "path") or f"checkpoint-{step}").rstrip("/").rsplit("/", 1)[-1]
            t = field(ckpt, "t")
            when = time.strftime("%m-%d %H:%M:%S", time.localtime(t)) if isinstance(t, (int, float)) else "?"
            value = eval_by_step.get(step)
            rows.append((name, str(step), when, human_bytes(field(ckpt, "bytes")),
                         f"{value:.4g}" if value is not None else "–", bool(field(ckpt, "is_best"))))
        if rows == self._shown:
            return
        self._shown = rows
        keep = self.cursor_row
        self.clear()
        for name, step, when, size, value, best in rows:
            self.add_row(Text(name), step, when, size, value,
                         Text("★ best", style="bold green") if best else Text(""), key=name)
        if rows:
            self.move_cursor(row=min(max(keep, 0), len(rows) - 1))
