"""The trainer's outside world: experiment trackers (`report_to`) and Hub pushes (`push_to_hub`).

`Integrations(args, task, run_dir, run_name, is_main, emit)` imports what the preset asks
for at once (a missing package is one `TuitrainError` line before any step) and then takes
four calls from the trainer: `on_event(event)` for every event written, `on_save(path, step,
epoch)` after a checkpoint, `finish(state, final_model_dir)` before the final status, `close()`.
Only rank 0 reports or pushes. Nothing here raises into the training loop: a tracker or push
that fails becomes a `warning` event and one line on stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from .hub import HubPusher
from .reporters import Reporters


class Integrations:
    """Trackers and Hub pushes of one run, behind the trainer's four calls."""

    def __init__(self, args: Any, task: Any, run_dir: Path, run_name: str, is_main: bool,
                 emit: Callable[..., Any]) -> None:
        self.emit = emit
        self.step = 0
        self.reporters = Reporters.build(args, task, Path(run_dir), run_name) if is_main else None
        # HF names the repository after output_dir, not run_name: here, the run directory
        self.hub = (HubPusher(args, Path(run_dir), Path(run_dir).name)
                    if is_main and args.push_to_hub else None)
        self._finished = False

    def _warn(self, messages: list[str]) -> None:
        for message in messages:
            print(f"warning: {message}", file=sys.stderr, flush=True)
            self.emit("warning", step=self.step, message=message)

    def on_event(self, event: dict) -> None:
        """Hand a written event to the trackers (and report pushes that failed meanwhile)."""
        if isinstance(event.get("step"), int):
            self.step = event["step"]
        if self.reporters is not None and self.reporters.trackers:
            self._warn(self.reporters.report(event))
        if self.hub is not None and event.get("kind") != "warning":
            self._warn(self.hub.messages())

    def on_save(self, checkpoint: Path, step: int, epoch: float) -> None:
        """A checkpoint was saved: queue its push per hub_strategy."""
        if self.hub is None:
            return
        try:
            self.hub.on_save(Path(checkpoint), step, epoch)
        except Exception as exc:  # noqa: BLE001 - a push must never stop training
            self._warn([f"push to the Hub (step {step}) not started: {type(exc).__name__}: {exc}"])

    def finish(self, state: str, final: Path | None = None) -> None:
        """Before the final status: push the final model folder of a finished run, wait for uploads."""
        if self.hub is None or self._finished:
            return
        self._finished = True
        try:
            if state == "finished" or self.hub.busy():
                print(f"pushing to the Hub ({self.hub.repo_id}); waiting for the upload to finish",
                      flush=True)
            self.hub.finish(state, final)
        except Exception as exc:  # noqa: BLE001
            self._warn([f"push to the Hub (end of training) not started: {type(exc).__name__}: {exc}"])
            self.hub.wait()
        self._warn(self.hub.messages())
        if self.hub.pushed:
            print(f"pushed {len(self.hub.pushed)} commit(s) to https://huggingface.co/{self.hub.repo_id}",
                  flush=True)

    def close(self) -> None:
        """Wait for pushes and end the trackers with the run's final state; safe to call twice."""
        if self.hub is not None:
            self.hub.close()
        if self.reporters is not None:
            self.reporters.close()
