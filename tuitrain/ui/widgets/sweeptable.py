"""The cells of a sweep's results table as the sweep screen shows them: column headers and
each value as text. Which columns, in which order, and the rows' order are the results'
own (`tuitrain.sweeps.results.columns_of`, `cell`, `sort_rows`).

A varied value's column is headed by the key's last dotted part (the whole key where two
would read the same).
"""

from __future__ import annotations

import math
from typing import Any

from tuitrain.textfmt import format_duration
from tuitrain.ui.widgets.checkpoints import human_bytes

VALUE_PREFIX = "values."
# Columns shown inside another one (`step` is `step/max_steps`, memory says its kind).
FOLDED = ("max_steps", "memory_kind")
HEADERS = {
    "member": "", "best_eval_loss": "best eval", "final_eval_loss": "final eval", "train_loss": "train loss",
    "train_samples_per_second": "samples/s", "train_tokens_per_second": "tokens/s", "peak_memory_bytes": "peak mem",
    "wall_s": "wall",
}


def shown_columns(columns: list[str]) -> list[str]:
    """The results' columns less those folded into another."""
    return [c for c in columns if c not in FOLDED]


def value_headers(columns: list[str]) -> dict[str, str]:
    """Each varied key's header (`values.KEY` columns): its last dotted part, unless two share it."""
    keys = [c[len(VALUE_PREFIX):] for c in columns if c.startswith(VALUE_PREFIX)]
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {VALUE_PREFIX + k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last)}


def header(column: str, value_names: dict[str, str]) -> str:
    """A column's label."""
    if column in value_names:
        return value_names[column]
    if column.startswith(VALUE_PREFIX):
        return column[len(VALUE_PREFIX):]
    return HEADERS.get(column, column.replace("_", " "))


def text(row: dict[str, Any], column: str, value: Any) -> str:
    """A row's `value` in `column` as text (`–` where unknown)."""
    if column == "step":
        return f"{value if value is not None else 0}/{row.get('max_steps') or '?'}"
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("inf" if value > 0 else "-inf")  # a diverged member's loss
    if column == "peak_memory_bytes":
        kind = row.get("memory_kind")
        return human_bytes(value) + (f" {kind}" if kind else "")
    if column == "wall_s":
        return format_duration(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):  # a varied value as the member's name has it, a metric to 4 digits
        return f"{value:g}" if column.startswith(VALUE_PREFIX) else f"{value:.4g}"
    return str(value)


def values_label(values: dict[str, Any]) -> str:
    """A member's varied values, in order, as its table row shows them: `cosine, 0.1` (what
    the legends call it: the keys head the table's columns)."""
    return ", ".join(text({}, VALUE_PREFIX + k, v) for k, v in values.items())
