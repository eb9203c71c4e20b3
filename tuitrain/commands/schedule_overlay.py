"""`tuitrain schedule PRESET --grid GROUP.KEY=V1,V2 …`: a sweep's members' LR curves, overlaid.

Each member is expanded and checked exactly as `tuitrain sweep` would (one bad member refuses
the whole drawing with its one-line error), and its curve is the schedule math the engine runs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from tuitrain.errors import TuitrainError

# One marker per curve (colour alone would not tell them apart in a pipe or a file); the
# lines printed under the chart say which is which.
PLAIN_MARKERS = ("•", "+", "x", "o", "*", "#", "@", "%", "&", "=")
MAX_CURVES = 12


def member_curves(preset_path: Any, spec: Any, steps: int | None, points: int) -> list[dict[str, Any]]:
    """Per member: `name`, `steps` (1-based updates drawn), `lrs`, `warmup`, `total`, `peak`, `final`."""
    from tuitrain.commands.schedule import total_steps_for
    from tuitrain.config.schedules import curve_steps, lr_curve
    from tuitrain.config.steps import num_warmup_steps
    from tuitrain.sweeps.expand import expand

    out = []
    for member in expand(preset_path, spec):
        args = member.preset.args
        total = total_steps_for(member.preset, steps)
        warmup = num_warmup_steps(total, args.warmup_steps, args.warmup_ratio)
        xs = curve_steps(total, min(total, points))
        if total <= 2_000_000:
            full = lr_curve(args, total, warmup)
            lrs, peak, final = [full[k - 1] for k in xs], max(full), full[-1]
        else:
            lrs = lr_curve(args, total, warmup, points=len(xs))
            peak, final = max(lrs), lrs[-1]
        out.append({"name": member.name, "steps": xs, "lrs": lrs, "warmup": warmup, "total": total,
                    "peak": peak, "final": final, "scheduler": args.lr_scheduler_type})
    return out


def render_overlay(title: str, curves: list[dict[str, Any]], width: int, height: int, colorless: bool) -> str:
    """The curves on one chart, the i-th drawn with PLAIN_MARKERS[i] (plotext)."""
    import plotext

    fig = plotext.figure
    fig.clear()
    fig.plot_size(width, height)
    if colorless:
        fig.theme("clear")
    for i, c in enumerate(curves):
        curve = fig.signal(c["steps"], c["lrs"], marker=PLAIN_MARKERS[i % len(PLAIN_MARKERS)])
        curve.lines()
        fig.draw(curve)
    fig.legend(False)
    last = max(c["steps"][-1] for c in curves)
    xticks = sorted({1, *(round(1 + (last - 1) * i / 4) for i in range(1, 5))})
    fig.ruler("x").ticks(xticks, [f"{x:,}" for x in xticks])
    top = max(c["peak"] for c in curves) or 1.0
    y = fig.ruler("y")
    y.lim(0.0, top * 1.05)
    n = 4 if height >= 12 else 2
    ticks = [top * i / n for i in range(n + 1)]
    y.ticks(ticks, [f"{t:.3g}" for t in ticks])
    fig.title(title)
    text = fig.build().string(colorless=colorless)
    fig.clear()
    return text


def run_overlay(ns: argparse.Namespace) -> int:
    """Draw the members' curves and print one summary line per member."""
    from tuitrain.paths import resolve_preset_path
    from tuitrain.sweeps.spec import parse_cli

    spec = parse_cli(grid=ns.grid, zip=ns.zip, sets=ns.overrides)
    path = resolve_preset_path(ns.preset)
    term = shutil.get_terminal_size((100, 30))
    width = ns.width or min(term.columns, 120)
    height = ns.height or max(min(term.lines - 4, 24), 10)
    if width < 20 or height < 6:
        raise TuitrainError("--width must be >= 20 and --height >= 6")
    curves = member_curves(path, spec, ns.steps, 2 * width)
    if len(curves) > MAX_CURVES:
        raise TuitrainError(f"schedule: {len(curves)} curves is too many to tell apart on one chart "
                            f"(at most {MAX_CURVES}); vary fewer values")
    colorless = not sys.stdout.isatty()
    print(render_overlay(f"{path.stem}: {len(curves)} learning-rate schedules", curves, width, height, colorless))
    wide = max(len(c["name"]) for c in curves)
    for i, c in enumerate(curves):
        mark = PLAIN_MARKERS[i % len(PLAIN_MARKERS)]
        print(f"{mark} {c['name']:<{wide}}  {c['scheduler']}: warmup {c['warmup']} steps, total {c['total']} steps, "
              f"peak LR {c['peak']:.3g}, final LR {c['final']:.3g}")
    return 0
