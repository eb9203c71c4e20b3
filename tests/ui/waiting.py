"""Waiting on the app, never on the clock: a condition polled while the app processes its
messages and its worker threads run, with a deadline that only bounds a failure."""

from __future__ import annotations

import asyncio
import time


async def until(pilot, condition, what: str = "the condition", timeout: float = 60.0) -> None:
    """Let the app work until `condition()` holds; fail naming `what` after `timeout` seconds.

    The deadline only bounds a failure, so it is generous: with every core taken by
    busier processes (`tests/under_load.sh`) a dashboard took more than 15 s to settle."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()  # every queued message handled
        if condition():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)  # a worker thread's turn


async def workers_done(pilot) -> None:
    """Wait for the app's workers to finish, then for the messages they posted."""
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


def screen_text(app) -> list[str]:
    """The text of every row the app would send to the terminal now."""
    update = app.screen._compositor.render_update(full=True)
    return ["".join(segment.text for segment in strip) for strip in update.strips]
