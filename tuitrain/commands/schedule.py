"""`tuitrain schedule PRESET`: the learning-rate curve of a preset, drawn in the terminal."""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import Any

from tuitrain.errors import TuitrainError


def register(subparsers: Any) -> None:
    """Add the `schedule` command."""
    p = subparsers.add_parser(
        "schedule",
        help="draw a preset's learning-rate schedule in the terminal",
        description="Draw the LR curve a preset would follow (HF's convention: update k runs "
        "at base_lr × λ(k−1)), with warmup end and peak marked, and print a one-line summary.",
    )
    p.add_argument("preset", metavar="PRESET", help="preset file or shipped preset name")
    p.add_argument("--steps", type=int, default=None, metavar="N",
                   help="total optimizer updates (default: max_steps, else derived from the task's size)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="GROUP.KEY=VALUE",
                   help="override a preset value (repeatable)")
    p.add_argument("--grid", action="append", default=[], metavar="GROUP.KEY=V1,V2,…",
                   help="overlay the curves of a sweep's members (as `tuitrain sweep` takes it; repeatable)")
    p.add_argument("--zip", action="append", default=[], metavar="GROUP.KEY=V1,V2,…",
                   help="keys varied together, as `tuitrain sweep --zip`")
    p.add_argument("--width", type=int, default=None, metavar="W", help="chart width in columns")
    p.add_argument("--height", type=int, default=None, metavar="H", help="chart height in rows")
    p.set_defaults(func=run_schedule)


def _world_size(preset: Any) -> int:
    launch = getattr(preset, "launch", None)
    if launch is None or getattr(launch, "launcher", "local") != "torchrun":
        return 1
    nproc = getattr(launch, "nproc_per_node", 1)
    nnodes = getattr(launch, "nnodes", 1) or 1
    return int(nproc) * int(nnodes) if isinstance(nproc, int) else int(nnodes)


def total_steps_for(preset: Any, steps: int | None) -> int:
    """--steps, else the preset's max_steps, else derived from the task's training-set size."""
    from tuitrain.config.steps import plan_steps
    from tuitrain.config.tasks import train_examples

    if steps is not None:
        if steps < 1:
            raise TuitrainError(f"--steps must be >= 1, got {steps}")
        return steps
    max_steps = getattr(preset.args, "max_steps", -1) or -1
    if max_steps > 0:
        return int(max_steps)
    task = preset.task
    examples = train_examples(task.name, task.options)
    if examples is None:
        raise TuitrainError(
            f"{preset.path}: the size of task {task.name!r} is not known without running it; "
            "pass --steps N (or set core.max_steps)"
        )
    return plan_steps(preset.args, examples, world_size=_world_size(preset)).total_steps


# Above this many updates the curve is only sampled (the peak may then fall between samples).
_FULL_CURVE_LIMIT = 2_000_000


def _fmt(lr: float) -> str:
    return f"{lr:.3g}"


def render(name: str, steps: list[int], lrs: list[float], warmup: int, width: int, height: int,
           colorless: bool) -> str:
    """The chart as text (plotext's built figure)."""
    import plotext

    fig = plotext.figure
    fig.clear()
    fig.plot_size(width, height)
    if colorless:
        fig.theme("clear")
    curve = fig.signal(steps, lrs, marker="braille")
    curve.lines()
    fig.draw(curve)
    if 0 < warmup < steps[-1]:
        # update warmup+1 is the first at the peak; `relative=True` means data coordinates
        fig.line(warmup + 1, orientation=1, relative=True)
        fig.draw(fig.text(warmup + 1, min(lrs), f" warmup end ({warmup})", alignment="left"))
    top = max(lrs)
    peak_i = next(i for i, lr in enumerate(lrs) if lr >= top * (1 - 1e-9))  # the first time at the peak
    fig.draw(fig.text(steps[peak_i], lrs[peak_i], f"▲ peak {_fmt(lrs[peak_i])}", alignment="left"))
    fig.legend(False)
    fig.title(f"{name} learning rate (update 1..{steps[-1]})")
    # LRs are >= 0: anchor the axis at 0 so a flat schedule still reads right.
    top = top or 1.0
    n = 4 if height >= 12 else 2
    ticks = [top * i / n for i in range(n + 1)]
    y = fig.ruler("y")
    y.lim(0.0, top * 1.05)
    y.ticks(ticks, [_fmt(t) for t in ticks])
    last = steps[-1]
    xticks = sorted({1, *(round(1 + (last - 1) * i / 4) for i in range(1, 5))})
    fig.ruler("x").ticks(xticks, [f"{x:,}" for x in xticks])
    text = fig.build().string(colorless=colorless)
    fig.clear()
    return text


def run_schedule(ns: argparse.Namespace) -> int:
    """Entry point of `tuitrain schedule`."""
    if ns.grid or ns.zip:
        from tuitrain.commands.schedule_overlay import run_overlay

        return run_overlay(ns)
    from tuitrain.config.preset import load_preset
    from tuitrain.config.rules import warmup_problem, warmup_suggestion
    from tuitrain.config.schedules import METRIC_DRIVEN, curve_steps, lr_curve
    from tuitrain.config.steps import num_warmup_steps
    from tuitrain.paths import resolve_preset_path

    preset = load_preset(resolve_preset_path(ns.preset), ns.overrides)
    args = preset.args
    total = total_steps_for(preset, ns.steps)
    warmup = num_warmup_steps(total, getattr(args, "warmup_steps", 0), getattr(args, "warmup_ratio", 0.0))
    problem = warmup_problem(warmup, total)
    if problem:
        key = "warmup_steps" if getattr(args, "warmup_steps", 0) else "warmup_ratio"
        print(f"notice: {preset.path}: optimizer.{key}: {problem} ({warmup_suggestion(key, total)})",
              file=sys.stderr)
    name = args.lr_scheduler_type
    term = shutil.get_terminal_size((100, 30))
    width = ns.width or min(term.columns, 120)
    height = ns.height or max(min(term.lines - 4, 24), 10)
    if width < 20 or height < 6:
        raise TuitrainError("--width must be >= 20 and --height >= 6")

    points = min(total, 2 * width)  # braille draws two points per column
    steps = curve_steps(total, points)
    if total <= _FULL_CURVE_LIMIT:
        # Evaluate every update so the peak and the final LR are exact, then plot a decimated
        # view that still contains the peak.
        full = lr_curve(args, total, warmup)
        top = max(full)
        peak_step = 1 + next(i for i, lr in enumerate(full) if lr >= top)
        steps = sorted({*steps, peak_step})
        lrs = [full[k - 1] for k in steps]
        final = full[-1]
    else:
        lrs = lr_curve(args, total, warmup, points=points)
        final = lrs[-1]  # curve_steps always samples the last update
    if name == "constant" and warmup:
        note = " (constant ignores warmup, as in transformers)"
    elif name in METRIC_DRIVEN:
        note = " (reacts to eval metrics during training; the preview is flat)"
    else:
        note = ""
    print(render(name, steps, lrs, warmup, width, height, colorless=not sys.stdout.isatty()))
    print(
        f"{name}: warmup {warmup} steps, total {total} steps, peak LR {_fmt(max(lrs))}, "
        f"final LR {_fmt(final)}{note}"
    )
    return 0
