"""A sweep's results as text: the table `tuitrain sweep show` prints, its CSV and its JSON."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from tuitrain.sweeps.results import best_index, cell, columns_of
from tuitrain.textfmt import escape_controls, format_duration

__all__ = ["format_rows", "table_text", "csv_text", "json_text", "memory_text", "progress_line"]

FORMATS = ("table", "json", "csv")
# Table headers of the fixed columns (the varied keys are headed by their short names).
_HEADERS = {
    "state": "STATE", "step": "STEP", "best_eval_loss": "BEST EVAL", "final_eval_loss": "FINAL EVAL",
    "train_loss": "TRAIN LOSS", "train_samples_per_second": "SAMPLES/S", "train_tokens_per_second": "TOKENS/S",
    "peak_memory_bytes": "PEAK MEM", "wall_s": "WALL",
}


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.{digits}f}" if abs(value) < 1e5 else f"{value:.4g}"
    return escape_controls(str(value))


def memory_text(nbytes: Any, kind: Any) -> str:
    """`412 MiB host`, `3.1 GiB device`, or `-`."""
    if not isinstance(nbytes, (int, float)):
        return "-"
    size = f"{nbytes / 2**30:.2f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"
    return f"{size} {kind}" if kind else size


def _short(column: str, keys: list[str]) -> str:
    key = column[len("values."):]
    last = key.rpartition(".")[2]
    return last if sum(k.rpartition(".")[2] == last for k in keys) == 1 else key


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape_controls(str(value))


def format_rows(found: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells of the table: a `*` marks the best row, then one column per varied
    key, state, steps, the eval metrics' best and final, train loss, throughput, memory, time."""
    cols = columns_of(found)
    varied = [c for c in cols if c.startswith("values.")]
    keys = [c[len("values."):] for c in varied]
    metrics = [c for c in cols if c.startswith(("best_eval_", "final_eval_"))]
    named = [_short(c, keys) for c in varied] or ["MEMBER"]
    headers = ["", *named, "STATE", "STEP",
               *(_HEADERS.get(c) or c.upper().replace("_", " ") for c in metrics),
               "TRAIN LOSS", "SAMPLES/S", "TOKENS/S", "PEAK MEM", "WALL"]
    best = best_index(found)
    out = []
    for i, row in enumerate(found):
        step = f"{row.get('step') if row.get('step') is not None else '-'}/{row.get('max_steps') or '-'}"
        values = [_value_text(cell(row, c)) for c in varied] or [escape_controls(row["member"])]
        cells = ["*" if i == best else "", *values,
                 escape_controls(str(row.get("state"))), step,
                 *(_number(row.get(c)) for c in metrics), _number(row.get("train_loss")),
                 _number(row.get("train_samples_per_second"), 1), _number(row.get("train_tokens_per_second"), 0),
                 memory_text(row.get("peak_memory_bytes"), row.get("memory_kind")),
                 format_duration(row.get("wall_s"), with_seconds=True)]
        out.append(cells)
    return headers, out


def table_text(found: list[dict[str, Any]]) -> str:
    """The aligned table (numbers right-aligned), with a line under it naming the best member
    and the reason of every member that did not finish."""
    if not found:
        return "no members"
    headers, cells = format_rows(found)
    widths = [max(len(r[i]) for r in [headers, *cells]) for i in range(len(headers))]
    numeric = {i for i, h in enumerate(headers) if h in ("STEP", "TRAIN LOSS", "SAMPLES/S", "TOKENS/S", "PEAK MEM",
                                                         "WALL") or h.startswith(("BEST ", "FINAL "))}

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()

    lines = [line(headers), *(line(r) for r in cells)]
    best = best_index(found)
    if best is not None:
        lines.append(f"\n* best: {escape_controls(found[best]['member'])}")
    for row in found:
        if row.get("state") in ("failed", "diverged", "unreadable") and row.get("error"):
            lines.append(f"{escape_controls(row['member'])} {row['state']}: {escape_controls(row['error'])}")
        elif row.get("state") == "diverged":
            lines.append(f"{escape_controls(row['member'])} diverged: its loss became NaN/inf "
                         f"(stopped at step {row.get('step')}, checkpoint saved)")
    return "\n".join(lines)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    """A row for JSON: non-finite floats as null (JSON has none)."""
    def fix(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        return v
    return {k: fix(v) for k, v in row.items()}


def json_text(found: list[dict[str, Any]]) -> str:
    """`{"members": [row, …], "best": member}` (rows with `values` as an object)."""
    best = best_index(found)
    return json.dumps({"members": [_plain(r) for r in found], "best": found[best]["member"] if best is not None else None},
                      indent=2)


def csv_text(found: list[dict[str, Any]]) -> str:
    """A header line, then one line per member (a varied key's column is its dotted key)."""
    cols = columns_of(found) + ["error"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c[len("values."):] if c.startswith("values.") else c for c in cols])
    for row in found:
        writer.writerow(["" if (v := cell(row, c)) is None else v for c in cols])
    return buf.getvalue()


def progress_line(name: str, state: str, step: Any, max_steps: Any, loss: Any, width: int = 24) -> str:
    """One member's progress: `lr_scheduler_type=cosine  running  [#####-----]  40/100  loss 2.31`."""
    frac = step / max_steps if isinstance(step, int) and isinstance(max_steps, int) and max_steps else 0.0
    filled = int(round(min(1.0, frac) * width))
    bar = "[" + "#" * filled + "-" * (width - filled) + "]"
    steps = f"{step if step is not None else '-'}/{max_steps or '-'}"
    tail = f"  loss {loss:.4f}" if isinstance(loss, float) and math.isfinite(loss) else ""
    return f"{escape_controls(name)}  {state:<9} {bar} {steps:>11}{tail}"
