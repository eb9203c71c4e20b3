"""The latest generated samples, shown literally (no markup, control characters escaped)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tuitrain.ui.widgets.logtail import visible
from tuitrain.ui.widgets.checkpoints import field


class SamplesView(Static):
    """The last few `sample` events, newest first."""

    def __init__(self, *, shown: int = 3, id: str | None = None, classes: str | None = None) -> None:
        super().__init__("no samples yet", markup=False, id=id, classes=classes)
        self.shown = shown
        self._key: tuple = ()

    def show(self, samples: list) -> None:
        """Display the newest `shown` samples (a no-op when nothing changed)."""
        latest = samples[-self.shown:][::-1]
        key = tuple((field(s, "step"), field(s, "text")) for s in latest)
        if key == self._key:
            return
        self._key = key
        if not latest:
            self.update("no samples yet")
            return
        out = Text()
        for i, sample in enumerate(latest):
            if i:
                out.append("\n")
            out.append(f"step {field(sample, 'step')}: ", style="bold")
            for j, line in enumerate(str(field(sample, "text", "")).split("\n")):
                out.append(("\n" if j else "") + visible(line).plain)
        self.update(out)
