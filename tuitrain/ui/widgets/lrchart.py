"""The learning-rate schedule of a preset, drawn with plotext (warmup end and peak marked).

The chart's caption (schedule, peak, warmup end) is its border title, so that the plot
keeps every row of a short chart.
"""

from __future__ import annotations

import plotext
from rich.text import Text
from textual.content import Content

from tuitrain.ui.widgets.plot import PlotWidget

TITLE_POINTS = 400  # resolution of the curve the caption's peak is read from


class LRChart(PlotWidget):
    """Shows `lr_curve(args, total_steps, warmup_steps)`; call `set_schedule` on every change."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.args = None
        self.total_steps = 0
        self.warmup_steps = 0
        self.message = "No schedule yet"
        self.title = ""

    def set_schedule(self, args, total_steps: int, warmup_steps: int) -> None:
        """Redraw for these resolved arguments and step plan."""
        self.args, self.total_steps, self.warmup_steps = args, int(total_steps), int(warmup_steps)
        self.message = ""
        self._set_title(self._caption())
        self.replot()

    def set_message(self, message: str) -> None:
        """Show a message instead of a curve (the preset does not validate)."""
        self.args = None
        self.message = message
        self._set_title("LR schedule")
        self.replot()

    def _set_title(self, title: str) -> None:
        self.title = title
        self.border_title = Content(title)  # Content: never read as markup

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
        title = f"LR {self._scheduler()} · peak {lrs[peak]:.3g} @ step {steps[peak]}"
        if self._shows_warmup():
            title += f" · warmup ends {self.warmup_steps}"
        return title

    def curve(self, points: int) -> tuple[list[int], list[float]]:
        """(update numbers, learning rates) at most `points` long."""
        from tuitrain.config.schedules import curve_steps, lr_curve, make_lambda

        if self.args is None or self.total_steps <= 0:
            return [], []
        steps = curve_steps(self.total_steps, points)
        if self.warmup_steps and self.warmup_steps not in steps and self.warmup_steps <= self.total_steps:
            steps = sorted(set(steps) | {self.warmup_steps, self.warmup_steps + 1})
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

    def draw(self, fig, width: int, height: int) -> None:
        steps, lrs = self.curve(max(width * 2, 2))
        if not steps:
            return
        colors = self.colors
        peak = max(range(len(lrs)), key=lrs.__getitem__)
        top = lrs[peak] or 1.0
        fig.ruler("y").lim(0, top * 1.05)  # from 0, and a flat curve keeps its scale
        fig.ruler("y").ticks([0, top / 2, top], ["0", f"{top / 2:.2g}", f"{top:.2g}"])
        if self._shows_warmup():
            fig.line(self.warmup_steps, orientation="v", pixel=self.pixel(colors.marker))
        self.line(fig, steps, lrs, colors.lr)
        fig.draw(fig.signal([steps[peak]], [lrs[peak]], marker=plotext.marker("●", pixel=self.pixel(colors.marker))))
        if height < 8:
            # A short chart keeps its rows for the curve (the caption names the steps).
            fig.ruler("x").ticks([], [])
