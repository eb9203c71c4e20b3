"""The learning-rate schedule of a preset as the editor draws it: warmup end and peak marked.

The chart's caption (schedule, warmup, peak) is its border title, so that the plot keeps
every row of a short chart. HF's convention: update k runs at `base_lr × λ(k−1)`, so with
`warmup_steps = 20` the LR peaks at update 21, and the caption says so.

`set_schedules` overlays several schedules instead (a sweep's members, before it is
launched), each in its own colour and marker glyph with a legend, on one step axis.
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from tuitrain.ui.widgets.chartdraw import Frame, Trace, glyph
from tuitrain.ui.widgets.charts import ChartWidget

TITLE_POINTS = 400  # resolution of the curve the caption's peak is read from


def schedule_curve(args, total_steps: int, warmup_steps: int, points: int) -> tuple[list[int], list[float]]:
    """(update numbers, learning rates) of a schedule, at most `points` long (plus the warmup's end)."""
    from tuitrain.config.schedules import curve_steps, lr_curve, make_lambda

    if args is None or total_steps <= 0:
        return [], []
    steps = curve_steps(total_steps, points)
    if warmup_steps and warmup_steps not in steps and warmup_steps <= total_steps:
        steps = sorted(set(steps) | {warmup_steps, min(warmup_steps + 1, total_steps)})
    base_lr = float(getattr(args, "learning_rate", 5e-5))
    kwargs = getattr(args, "lr_scheduler_kwargs", None) or {}
    if steps == curve_steps(total_steps, points):
        return steps, lr_curve(args, total_steps, warmup_steps, points)
    scheduler = getattr(args, "lr_scheduler_type", "") or "linear"
    fn = make_lambda(scheduler, warmup_steps, total_steps, kwargs, base_lr)
    return steps, [base_lr * fn(k - 1) for k in steps]


class LRChart(ChartWidget):
    """Shows `lr_curve(args, total_steps, warmup_steps)`; call `set_schedule` on every change."""

    y_label = "LR"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.args = None
        self.total_steps = 0
        self.warmup_steps = 0
        self.message = "No schedule yet"
        self.caption = ""
        self.schedules: list[tuple[str, object, int, int]] = []  # overlaid: (label, args, total, warmup)

    def set_schedule(self, args, total_steps: int, warmup_steps: int) -> None:
        """Redraw for these resolved arguments and step plan."""
        self.args, self.total_steps, self.warmup_steps = args, int(total_steps), int(warmup_steps)
        self.schedules = []
        self.message = ""
        self._set_caption(self._caption())
        self.replot()

    def set_schedules(self, schedules: list[tuple[str, object, int, int]]) -> None:
        """Overlay several schedules, each `(label, args, total_steps, warmup_steps)`."""
        if not schedules:
            self.set_message("No member to draw")
            return
        self.schedules = [(label, args, int(total), int(warmup)) for label, args, total, warmup in schedules]
        self.args, self.total_steps, self.warmup_steps = self.schedules[0][1:]
        self.message = ""
        peaks = [max(schedule_curve(a, t, w, TITLE_POINTS)[1] or [0.0]) for _, a, t, w in self.schedules]
        count = len(self.schedules)
        self._set_caption(f"LR of {count} member{'s' if count != 1 else ''} · peaks "
                          f"{min(peaks):.3g}" + (f"–{max(peaks):.3g}" if max(peaks) != min(peaks) else ""))
        self.replot()

    def set_message(self, message: str) -> None:
        """Show a message instead of a curve (the preset does not validate)."""
        self.args = None
        self.schedules = []
        self.message = message
        self._set_caption("LR schedule")
        self.replot()

    def _set_caption(self, caption: str) -> None:
        self.caption = caption
        self.border_title = Content(caption)  # Content: never read as markup

    def _scheduler(self) -> str:
        return getattr(self.args, "lr_scheduler_type", "") or "linear"

    def _shows_warmup(self) -> bool:
        """Whether the schedule has a warmup to mark (`constant` and metric-driven ones ignore it)."""
        from tuitrain.config.schedules import METRIC_DRIVEN

        return self.warmup_steps > 0 and self._scheduler() != "constant" and self._scheduler() not in METRIC_DRIVEN

    def _caption(self) -> str:
        from tuitrain.config.schedules import METRIC_DRIVEN

        steps, lrs = self.curve(TITLE_POINTS)
        if not steps:
            return "LR schedule"
        if self._scheduler() in METRIC_DRIVEN:
            return f"LR {self._scheduler()} · {lrs[0]:.3g}, then set by the eval metric"
        peak = max(range(len(lrs)), key=lrs.__getitem__)
        parts = [f"LR {self._scheduler()}"]
        if self._shows_warmup():
            parts.append(f"warmup {self.warmup_steps}")
        if self._shows_warmup() and self.warmup_steps >= self.total_steps:
            top = float(getattr(self.args, "learning_rate", lrs[peak]))
            parts.append(f"peak {top:.3g} never reached ({lrs[peak]:.3g} at step {steps[peak]})")
        else:
            parts.append(f"peak {lrs[peak]:.3g} at step {steps[peak]}")
        return " · ".join(parts)

    def curve(self, points: int) -> tuple[list[int], list[float]]:
        """(update numbers, learning rates) at most `points` long (plus the warmup's end)."""
        return schedule_curve(self.args, self.total_steps, self.warmup_steps, points)

    def render(self) -> Text:
        if self.args is None:
            return Text(self.message or "No schedule", style="dim")
        return super().render()

    def frame(self) -> Frame:
        frame = super().frame()
        frame.legend = False
        if self.schedules:
            tops = [max(schedule_curve(a, t, w, TITLE_POINTS)[1] or [0.0]) for _, a, t, w in self.schedules]
            frame.legend = True
            frame.y_limits = (0.0, max(tops) or 1.0)
            frame.x_limits = (1, max(2, *(t for _, _, t, _ in self.schedules)))
            return frame
        steps, lrs = self.curve(TITLE_POINTS)
        if steps:
            top = max(lrs) or 1.0
            frame.y_limits = (0.0, top)  # from 0, and a flat curve keeps its scale
            frame.x_limits = (1, max(self.total_steps, 2))
            marker = self.style("marker")
            if self._shows_warmup():
                frame.vlines = [(self.warmup_steps, marker)]
            peak = max(range(len(lrs)), key=lrs.__getitem__)
            frame.points = [(steps[peak], lrs[peak], "o" if self.ascii_only else "●", marker)]
        return frame

    def traces(self, points: int) -> list[Trace]:
        if self.schedules:
            out = []
            for i, (label, args, total, warmup) in enumerate(self.schedules):
                steps, lrs = schedule_curve(args, total, warmup, max(points * 2, 2))
                out.append(Trace(label, steps, lrs, self.series_style(i), glyph(i, self.ascii_only)))
            return out
        steps, lrs = self.curve(max(points * 2, 2))
        return [Trace(None, steps, lrs, self.style("lr"))] if steps else []
