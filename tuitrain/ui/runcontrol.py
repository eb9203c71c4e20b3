"""The dashboard's run controls: resume (the latest, or a checkpoint: an older one asks
whether to fork a new run or rewind this one) and stop. A mixin of `DashboardScreen`, which
has `run_dir`, `info` (the run's `RunInfo`, or None), `history` and the checkpoints table.

Each control runs on a thread worker (it spawns or signals processes) and tells the outcome
with a notification; a fork opens the new run's dashboard through the app (`RunLaunched`).
"""

from __future__ import annotations

import time

from textual import work

from tuitrain.errors import TuitrainError
from tuitrain.ui.widgets.checkpoints import CheckpointTable

ACTIVE = ("queued", "running", "stopping")


class RunControls:
    """Resume, fork, rewind and stop the dashboard's run."""

    def _state(self) -> str:
        return self.info.state if self.info is not None else self.history.state

    def action_resume_highlighted(self) -> None:
        """Resume from the highlighted checkpoint; one older than the latest asks first: fork
        a new run from it (the default), or rewind this run to it."""
        table = self.query_one(CheckpointTable)
        checkpoint = table.highlighted_checkpoint
        if checkpoint is None:
            self.notify("no checkpoint to resume from yet", severity="warning")
            return
        if self._state() in ACTIVE:
            self.notify(f"the run is {self._state()}; stop it before resuming or forking it", severity="warning")
            return
        if checkpoint == table.latest_checkpoint:
            self._resume(checkpoint)
            return
        self._ask_fork_or_rewind(checkpoint, table.latest_checkpoint)

    def action_resume_latest(self) -> None:
        self._resume(None)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _ask_fork_or_rewind(self, checkpoint: str, latest: str | None) -> None:
        """Find a free name for the fork (it reads the known runs: off the UI thread), then ask."""
        from tuitrain.layout import checkpoint_step
        from tuitrain.runs.fork import fork_name
        from tuitrain.runs.names import suggest_name
        from tuitrain.ui.dialogs.forkrewind import ForkOrRewindScreen

        name = self.info.name if self.info is not None else self.run_dir.name
        suggestion = suggest_name(fork_name(name, checkpoint_step(checkpoint)))
        later = [c.name for c in self._on_disk if c.step > checkpoint_step(checkpoint)]

        def answered(answer) -> None:
            if answer is None:
                return
            choice, fork_as = answer
            if choice == "fork":
                self._fork(checkpoint, fork_as)
            elif choice == "rewind":
                self._resume(checkpoint)

        self.app.call_from_thread(self.app.push_screen, ForkOrRewindScreen(name, checkpoint, later, suggestion),
                                  answered)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _resume(self, checkpoint: str | None) -> None:
        from tuitrain.runs.launch import resume

        asked = time.time()
        try:
            info = resume(self.run_dir, checkpoint=checkpoint)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        last = info.rewinds[-1] if info.rewinds else {}
        verb = "rewound to" if (last.get("t") or 0) >= asked else "resumed from"
        self.app.call_from_thread(self.notify, f"{verb} {checkpoint or 'the latest checkpoint'}", markup=False)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _fork(self, checkpoint: str, name: str | None) -> None:
        from tuitrain.runs.fork import fork
        from tuitrain.ui.navigation import RunLaunched

        try:
            info = fork(self.run_dir, checkpoint=checkpoint, name=name or None)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.app.post_message(RunLaunched(info, open_dashboard=True))

    def action_stop(self) -> None:
        from tuitrain.ui.dialogs.confirm import ConfirmScreen

        def answered(yes: bool | None) -> None:
            if yes:
                self._stop_run()

        self.app.push_screen(ConfirmScreen(f"Stop run {self.run_dir.name}?",
                                           "It saves a checkpoint and exits.", yes_label="Stop"), answered)

    @work(thread=True, exclusive=True, group="dashboard-control")
    def _stop_run(self) -> None:
        from tuitrain.runs.launch import stop

        try:
            stop(self.run_dir)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        self.app.call_from_thread(self.notify, f"stopping {self.run_dir.name}")

