"""The learning-rate schedule of a preset, drawn with plotext (warmup end and peak marked)."""

from __future__ import annotations

from tuitrain.ui.widgets.plot import PlotWidget


class LRChart(PlotWidget):
    """Shows `lr_curve(args, total_steps, warmup_steps)`; call `set_schedule` on every change."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.args = None
        self.total_steps = 0
        self.warmup_steps = 0
        self.message = "No schedule yet"

    def set_schedule(self, args, total_steps: int, warmup_steps: int) -> None:
        """Redraw for these resolved arguments and step plan."""
        self.args, self.total_steps, self.warmup_steps = args, int(total_steps), int(warmup_steps)
        self.message = ""
        self.replot()

    def set_message(self, message: str) -> None:
        """Show a message instead of a curve (the preset does not validate)."""
        self.args = None
        self.message = message
        self.replot()

    def curve(self, points: int) -> tuple[list[int], list[float]]:
        """(update numbers, learning rates) at most `points` long."""
        from tuitrain.config.schedules import curve_steps, lr_curve

        if self.args is None or self.total_steps <= 0:
            return [], []
        steps = curve_steps(self.total_steps, points)
        if self.warmup_steps and self.warmup_steps not in steps and self.warmup_steps <= self.total_steps:
            steps = sorted(set(steps) | {self.warmup_steps, self.warmup_steps + 1})
        from tuitrain.config.schedules import make_lambda

        base_lr = float(getattr(self.args, "learning_rate", 5e-5))
        name = getattr(self.args, "lr_scheduler_type", "linear") or "linear"
        kwargs = getattr(self.args, "lr_scheduler_kwargs", None) or {}
        if steps == curve_steps(self.total_steps, points):
            return steps, lr_curve(self.args, self.total_steps, self.warmup_steps, points)
        fn = make_lambda(name, self.warmup_steps, self.total_steps, kwargs, base_lr)
        return steps, [base_lr * fn(k - 1) for k in steps]

    def draw(self, fig, width: int, height: int) -> None:
        steps, lrs = self.curve(max(width * 2, 2))
        if not steps:
            fig.title(self.message or "No schedule")
            return
        colors = self.colors
        peak_i = max(range(len(lrs)), key=lrs.__getitem__)
        title = f"LR {getattr(self.args, 'lr_scheduler_type', '')}: peak {lrs[peak_i]:.3g} @ step {steps[peak_i]}"
        if self.warmup_steps > 0:
            fig.line(self.warmup_steps, orientation="v", pixel=self.pixel(colors.marker))
            title += f" | warmup ends {self.warmup_steps}"
        self.line(fig, steps, lrs, colors.lr)
        fig.draw(fig.signal([steps[peak_i]], [lrs[peak_i]],
                            marker=__import__("plotext").marker("●", pixel=self.pixel(colors.marker))))
        fig.title(title)
