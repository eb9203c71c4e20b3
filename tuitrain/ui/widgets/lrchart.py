"""The learning-rate schedule of a preset as the editor draws it: warmup end and peak marked.

The chart's caption (schedule, warmup, peak) is its border title, so that the plot keeps
every row of a short chart. HF's convention: update k runs at `base_lr × λ(k−1)`, so with
`warmup_steps = 20` the LR peaks at update 21, and the caption says so.
"""

from __future__ import annotations

from rich.text import Text
from textual.content import Content

from tuitrain.ui.widgets.chartdraw import Frame, Trace
from tuitrain.ui.widgets.charts import ChartWidget

TITLE_POINTS = 400  # resolution of the curve the caption's peak is read from


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

    def set_schedule(self, args, total_steps: int, warmup_steps: int) -> None:
        """Redraw for these resolved arguments and step plan."""
        self.args, self.total_steps, self.warmup_steps = args, int(total_steps), int(warmup_steps)
        self.message = ""
        self._set_caption(self._caption())
        self.replot()

    def set_message(self, message: str) -> None:
        """Show a message instead of a curve (the preset does not validate)."""
        self.args = None
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
        from tuitrain.config.schedules import curve_steps, lr_curve, make_lambda

        if self.args is None or self.total_steps <= 0:
            return [], []
        steps = curve_steps(self.total_steps, points)
        if self.warmup_steps and self.warmup_steps not in steps and self.warmup_steps <= self.total_steps:
            steps = sorted(set(steps) | {self.warmup_steps, min(self.warmup_steps + 1, self.total_steps)})
        base_lr = float(getattr(self.args, "learning_rate", 5e-5))
        kwargs = getattr(self.args, "lr_scheduler_kwargs", None) or {}
        if steps == curve_steps(self.total_steps, points):
            return steps, lr_curve(self.args, self.total_steps, self.warmup_steps, points)
        fn = make_lambda(self._scheduler(), self.warmup_steps, self.total_steps, kwargs, base_lr)
        return steps, [base_lr * fn(k - 1) for k in steps]

    def render(self) -> Text:
        if self.args is None:
            return Text(self.message or "No schedule", style="dim")
        return super().render()

    def frame(self) -> Frame:
        frame = super().frame()
        frame.legend = False
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
        steps, lrs = self.curve(max(points * 2, 2))
        return [Trace(None, steps, lrs, self.style("lr"))] if steps else []
