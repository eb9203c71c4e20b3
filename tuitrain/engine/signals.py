"""Graceful stop: SIGTERM / SIGINT ask the loop to finish its step, checkpoint and exit 0.

`install_early()` (the engine's `main`, before torch is imported) catches a stop that
arrives while torch imports or the task builds; the trainer's own `StopRequest` starts
from it. With several ranks, the ranks agree before they act: each step every rank casts
its flag into an all-reduce (MAX) on a gloo group of its own, and all of them act on the
same result at the same step, so no rank waits in a collective that another never enters.
"""

from __future__ import annotations

import signal
import threading
from typing import Any


class StopRequest:
    """A flag set by SIGTERM or SIGINT; the training loop polls `.agreed(ctx)` between steps.

    A second signal of the same kind while a stop is pending restores the default
    handler, so pressing Ctrl-C twice still kills a stuck process.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}
        self._vote: Any = None
        self._take_early()

    def _take_early(self) -> None:
        if _early is not None and _early is not self and _early.requested and not self.requested:
            self.requested, self.signal_name = True, _early.signal_name

    def install(self) -> "StopRequest":
        """Install the handlers (main thread only; elsewhere this does nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        self._take_early()  # a signal the early handler caught before this one was installed
        return self

    def _handle(self, signum: int, frame) -> None:  # noqa: ARG002 - signal API
        if self.requested:
            signal.signal(signum, signal.SIG_DFL)
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def agreed(self, ctx: Any) -> bool:
        """Whether every rank stops after this step: the local flag in one process; across ranks,
        any rank's flag as cast one step earlier (every rank gets the same answer at the same step)."""
        if not getattr(ctx, "distributed", False):
            return self.requested
        if self._vote is None:
            from .distributed import StopVote

            self._vote = StopVote(ctx)
        return self._vote.cast(self.requested)

    def uninstall(self) -> None:
        """Put back the handlers that were there before `install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


_early: StopRequest | None = None


def install_early() -> StopRequest:
    """Catch SIGTERM / SIGINT from now on, before the trainer exists (the engine's `main`)."""
    global _early
    if _early is None:
        _early = StopRequest().install()
    return _early
