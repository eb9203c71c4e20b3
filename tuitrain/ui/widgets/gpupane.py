"""The dashboard's GPU / host pane, drawn from one telemetry snapshot.

`run_processes(run_dir)` runs in the dashboard's worker (it reads run.json and walks the
process table); `draw_gpu_pane` runs on the UI thread and only formats what the worker
gathered (`tuitrain.telemetry.pane` holds the wording).
"""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from tuitrain.runs.rundir import RunDirError, read_run_json
from tuitrain.telemetry import TelemetrySampler
from tuitrain.telemetry.pane import chart_series, pane_lines
from tuitrain.telemetry.placement import process_tree
from tuitrain.ui.widgets.charts import Line, LineChart, ListSeries
from tuitrain.ui.widgets.statictext import set_text


def run_processes(run_dir: Path, start: dict | None) -> frozenset[int]:
    """The pids of a run's trainer (run.json's `pid`) and its descendants; empty when it is
    not running, or not on CUDA (its `start` event's device): no process scan then."""
    device = (start or {}).get("device")
    if not isinstance(device, dict) or device.get("type") != "cuda":
        return frozenset()
    try:
        pid = read_run_json(run_dir).get("pid")
    except RunDirError:
        return frozenset()
    return process_tree(pid if isinstance(pid, int) else None)


def draw_gpu_pane(text: Static, chart: LineChart, telemetry: TelemetrySampler, history,
                  pids: frozenset[int]) -> None:
    """Fill the pane's text and chart from a single snapshot of the telemetry history."""
    readings = telemetry.snapshot()  # one copy: the worker appends while this draws
    device = (history.start or {}).get("device")
    lines = pane_lines(readings, telemetry.gpu_reason, device, pids)
    series = history.series
    run_mem = [f"{label} {series[name].last:.2f} GiB" for name, label in
               (("gpu_mem_allocated_gib", "allocated"), ("gpu_mem_reserved_gib", "reserved"))
               if name in series and series[name].last is not None]
    if run_mem:
        lines.append("run CUDA: " + ", ".join(run_mem))
    if readings:
        host = readings[-1].host
        lines.append(f"host CPU {host.cpu_percent:.0f}%  RAM {host.ram_used_gib:.1f}/{host.ram_total_gib:.1f} GiB")
    set_text(text, "\n".join(lines))
    chart_lines = [Line(label, ListSeries(ys, xs)) for label, xs, ys in chart_series(readings)]
    # psutil's first CPU figure is meaningless: the host lines start at the second reading
    host = readings[1:]
    if host:
        xs = [r.t - readings[-1].t for r in host]
        chart_lines.append(Line("host CPU", ListSeries([r.host.cpu_percent for r in host], xs)))
        chart_lines.append(Line("host RAM", ListSeries([100 * r.host.ram_used_gib / max(r.host.ram_total_gib, 1e-9)
                                                        for r in host], xs)))
    chart.set_lines(chart_lines)
