"""A sweep's results: one row per member, read from its run directory's events.

Field names follow the events (`eval_loss`, `train_loss`, `train_samples_per_second` …), so
the JSON and CSV of `tuitrain sweep show` read like a run's log.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from tuitrain.runs.history import RunHistory
from tuitrain.runs.registry import run_info
from tuitrain.runs.rundir import RunDirError, read_run_json
from tuitrain.sweeps.store import SweepInfo, read_sweep

__all__ = ["COLUMNS", "rows", "member_row", "sort_rows", "best_index", "columns_of"]

GIB = 1024 ** 3
# The columns of every row, in the order a table shows them (after one column per varied key,
# and before `best_eval_*` / `final_eval_*` of metrics other than the loss).
COLUMNS = ("member", "state", "step", "max_steps", "best_eval_loss", "final_eval_loss", "train_loss",
           "train_samples_per_second", "train_tokens_per_second", "peak_memory_bytes", "memory_kind", "wall_s")


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def _values(series) -> list[float]:
    xs, ys = series.decimate(10 ** 9) if series is not None else ([], [])
    return list(ys)


def _peak_memory(history: RunHistory, device: dict | None, run_json: dict) -> tuple[int | None, str | None]:
    """The run's peak device memory (on a GPU: the train events' `gpu_mem_peak_gib`), else the
    trainer's peak resident memory its supervisor recorded when it ended (`peak_rss_bytes`)."""
    if device and device.get("type") == "cuda":
        peaks = _values(history.series.get("gpu_mem_peak_gib")) or _values(history.series.get("gpu_mem_allocated_gib"))
        if peaks:
            return int(max(peaks) * GIB), "device"
    rss = run_json.get("peak_rss_bytes")
    if isinstance(rss, int) and rss > 0:
        return rss, "host"
    return None, None


def member_row(run_dir: Path, name: str, values: dict[str, Any]) -> dict[str, Any]:
    """The row of one member's run directory (its state `unreadable` when it cannot be read)."""
    row: dict[str, Any] = {"member": name, "values": dict(values)}
    try:
        info = run_info(run_dir)
    except (RunDirError, OSError) as exc:
        row.update(state="unreadable", error=str(exc))
        return {**{c: None for c in COLUMNS}, **row}
    history = RunHistory(run_dir, keep_samples=0, follow_parent=False)
    history.update()
    summary = history.summary or {}
    row.update(state=info.state, step=info.step, max_steps=info.max_steps or history.max_steps,
               error=(info.error or "").splitlines()[0] if info.error else None)
    for metric, series in sorted(history.series.items()):
        if not metric.startswith("eval_") or metric.endswith(("_runtime", "_per_second")):
            continue
        points = [v for v in _values(series) if _finite(v) is not None]
        greater = metric.endswith(("accuracy", "f1", "precision", "recall", "bleu", "rouge", "score"))
        base = metric[len("eval_"):]
        row[f"best_eval_{base}"] = (max(points) if greater else min(points)) if points else None
        row[f"final_eval_{base}"] = _finite(series.last)
    loss = history.series.get("loss")
    row["train_loss"] = _finite(summary.get("train_loss"))
    if info.state == "diverged":
        row["train_loss"] = math.nan  # its loss became NaN/inf (JSON: null)
    elif row["train_loss"] is None and loss is not None:
        row["train_loss"] = loss.last  # the last logged loss (stopped, failed or running)
    row["train_samples_per_second"] = _finite(summary.get("train_samples_per_second"))
    if row["train_samples_per_second"] is None:
        row["train_samples_per_second"] = _finite(_mean(_values(history.series.get("samples_per_second"))))
    row["train_tokens_per_second"] = _tokens_rate(history, row["train_samples_per_second"])
    device = history.start.get("device") if history.start else None
    try:
        data = read_run_json(run_dir)
    except RunDirError:
        data = {}
    row["peak_memory_bytes"], row["memory_kind"] = _peak_memory(history, device if isinstance(device, dict) else None,
                                                                data)
    row["wall_s"] = round(info.elapsed_s, 3) if info.elapsed_s is not None else None
    return {**{c: None for c in COLUMNS}, "best_eval_loss": None, "final_eval_loss": None, **row}


def _tokens_rate(history: RunHistory, samples_rate: float | None) -> float | None:
    """Tokens/s over the run: HF's `train_tokens_per_second` when the run counted input tokens,
    else the run's samples/s times the tokens per sample its train events show."""
    counted = history.series.get("train_tokens_per_second")
    if counted is not None:
        return _finite(counted.last)
    tokens, samples = history.series.get("tokens_per_second"), history.series.get("samples_per_second")
    if tokens is None or samples is None or samples_rate is None:
        return None
    per_sample = _finite(tokens.last) and _finite(samples.last) and tokens.last / samples.last
    return round(samples_rate * per_sample, 3) if per_sample else None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def rows(sweep: SweepInfo | str | Path) -> list[dict[str, Any]]:
    """One row per member of the sweep (`SweepInfo` or its directory), in the sweep's order:
    `member`, `values`, `state`, `step`, `max_steps`, `best_eval_loss`, `final_eval_loss` (and
    `best_eval_X` / `final_eval_X` of every other eval metric), `train_loss`,
    `train_samples_per_second`, `train_tokens_per_second` (None when unknown),
    `peak_memory_bytes`, `memory_kind` ("device" | "host"), `wall_s`."""
    info = sweep if isinstance(sweep, SweepInfo) else read_sweep(sweep)
    return [member_row(m.dir, m.name, m.values) for m in info.members]


def columns_of(found: list[dict[str, Any]]) -> list[str]:
    """Every column the rows have, in table order: the varied keys (`values.<key>`), then
    COLUMNS with every other eval metric's best and final after `final_eval_loss`."""
    varied: list[str] = []
    extra: list[str] = []
    for row in found:
        for key in row.get("values", {}):
            if f"values.{key}" not in varied:
                varied.append(f"values.{key}")
        for key in row:
            if key.startswith(("best_eval_", "final_eval_")) and key not in COLUMNS and key not in extra:
                extra.append(key)
    cols = list(COLUMNS)
    at = cols.index("final_eval_loss") + 1
    return ["member", *varied, *cols[1:at], *sorted(extra), *cols[at:]]


def cell(row: dict[str, Any], column: str) -> Any:
    """A row's value in `column` (`values.<key>` reads a varied value)."""
    if column.startswith("values."):
        return row.get("values", {}).get(column[len("values."):])
    return row.get(column)


def resolve_column(found: list[dict[str, Any]], column: str) -> str:
    """The column `column` names: a column, a varied key (full or its last part), or a unique prefix."""
    from tuitrain.errors import TuitrainError
    from tuitrain.textfmt import closest

    cols = columns_of(found) if found else list(COLUMNS)
    if column in cols:
        return column
    for c in cols:
        if c.startswith("values.") and (c == f"values.{column}" or c.rpartition(".")[2] == column):
            return c
    starts = [c for c in cols if c.startswith(column)]
    if len(starts) == 1:
        return starts[0]
    near = closest(column, cols)
    raise TuitrainError(f"--sort {column}: no such column" + (f" (did you mean {near!r}?)" if near else "")
                        + "; columns: " + ", ".join(cols))


def sort_rows(found: list[dict[str, Any]], column: str, descending: bool = False) -> list[dict[str, Any]]:
    """The rows sorted by `column` (see `resolve_column`); rows without a value go last."""
    column = resolve_column(found, column)

    def key(row: dict[str, Any]) -> tuple:
        value = cell(row, column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return (1, 0, "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return (0, -value if descending else value, "")
        return (0, 0, str(value))

    ordered = sorted(found, key=key)
    if descending and not all(isinstance(cell(r, column), (int, float)) for r in found):
        ordered = sorted(found, key=lambda r: str(cell(r, column)), reverse=True)
    return ordered


def best_index(found: list[dict[str, Any]]) -> int | None:
    """The index of the best row: the lowest finite `best_eval_loss`, else the lowest finite
    `train_loss` (a diverged member is never best); None when no row has either."""
    for column in ("best_eval_loss", "train_loss"):
        scored = [(v, i) for i, r in enumerate(found) if r.get("state") != "diverged"
                  and (v := _finite(r.get(column))) is not None]
        if scored:
            return min(scored)[1]
    return None
