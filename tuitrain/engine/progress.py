"""The foreground progress line: step/total, loss, LR, throughput and ETA."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tuitrain.textfmt import format_duration


class ProgressLine:
    """Prints a line per logging step, at most one per `min_interval` seconds (the first and
    the last step always print); the ETA comes from the steps done in this process."""

    def __init__(self, total_steps: int, start_step: int = 0, stream: TextIO | None = None,
                 enabled: bool = True, min_interval: float = 0.2) -> None:
        self.total_steps = total_steps
        self.start_step = start_step
        self.stream = stream if stream is not None else sys.stdout
        self.enabled = enabled
        self.min_interval = min_interval
        self._t0 = time.perf_counter()
        self._printed_at: float | None = None

    def eta_seconds(self, step: int) -> float | None:
        """Seconds left at the rate of the steps done since this process started."""
        done = step - self.start_step
        if done <= 0:
            return None
        rate = done / max(time.perf_counter() - self._t0, 1e-9)
        return (self.total_steps - step) / rate

    def line(self, step: int, loss: float | None, lr: float | None,
             samples_per_second: float | None, tokens_per_second: float | None = None) -> str:
        """The text of one progress line."""
        width = len(str(self.total_steps))
        parts = [f"step {step:>{width}}/{self.total_steps}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if lr is not None:
            parts.append(f"lr {lr:.3e}")
        if tokens_per_second:
            parts.append(f"{tokens_per_second:,.0f} tok/s")
        elif samples_per_second:
            parts.append(f"{samples_per_second:,.1f} samples/s")
        parts.append(f"eta {format_duration(self.eta_seconds(step), unknown='?')}")
        return " | ".join(parts)

    def update(self, step: int, loss: float | None, lr: float | None,
               samples_per_second: float | None, tokens_per_second: float | None = None) -> None:
        """Print a progress line (stdout goes to `stdout.log` when detached).

        Logging every step of a fast run would print hundreds of lines a second, which no one
        reads and which costs the loop a format and a write each; lines closer than
        `min_interval` to the previous one are skipped (every `train` event is still in
        `metrics.jsonl`)."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if (self._printed_at is not None and step < self.total_steps
                and now - self._printed_at < self.min_interval):
            return
        self._printed_at = now
        print(self.line(step, loss, lr, samples_per_second, tokens_per_second),
              file=self.stream, flush=True)

    def message(self, text: str) -> None:
        """Print a one-off line (eval results, checkpoint saved, stop requested)."""
        if self.enabled:
            print(text, file=self.stream, flush=True)
