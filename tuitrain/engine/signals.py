"""Graceful stop: SIGTERM / SIGINT ask the loop to finish its step, checkpoint and exit 0."""

from __future__ import annotations

import signal
import threading


class StopRequest:
    """A flag set by SIGTERM or SIGINT; the training loop polls `.requested` between steps.

    A second signal of the same kind while a stop is pending restores the default
    handler, so pressing Ctrl-C twice still kills a stuck process.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, object] = {}

    def install(self) -> "StopRequest":
        """Install the handlers (main thread only; elsewhere this does nothing)."""
        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame) -> None:  # noqa: ARG002 - signal API
        if self.requested:
            signal.signal(signum, signal.SIG_DFL)
        self.requested = True
        self.signal_name = signal.Signals(signum).name

    def uninstall(self) -> None:
        """Put back the handlers that were there before `install`."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
