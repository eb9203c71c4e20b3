"""Resuming from a checkpoint that is not the run's latest: fork a new run, or rewind this one.

Fork (the default: nothing of the run changes) starts a new run, under the name in the name
field, from the checkpoint. Rewind takes this run back to the checkpoint: its later
checkpoints move to `RUN/rewound/<time>/` and the line past it is abandoned. Dismisses with
`("fork", name)`, `("rewind", None)` or None (Cancel, escape).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tuitrain.textfmt import escape_controls, unescape_controls


class ForkOrRewindScreen(ModalScreen[tuple[str, str | None] | None]):
    """Ask whether to fork a new run from `checkpoint` of run `run` or rewind `run` to it;
    `later` are the run's checkpoints past it, `suggestion` the fork's name offered."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="forkrewind.cancel")]

    def __init__(self, run: str, checkpoint: str, later: list[str], suggestion: str) -> None:
        super().__init__()
        self._run, self._checkpoint, self._later, self._suggestion = run, checkpoint, later, suggestion

    def compose(self) -> ComposeResult:
        run, checkpoint = escape_controls(self._run), escape_controls(self._checkpoint)
        later = ", ".join(self._later) if self._later else "the later checkpoints"
        with Vertical(id="dialog"):
            yield Label(f"Resume {run} from {checkpoint}?", classes="dialog-title", markup=False)
            yield Label(f"{checkpoint} is not the run's latest checkpoint.", markup=False)
            yield Label(f"Fork: a new run starts from {checkpoint}; {run} stays as it is.",
                        classes="field-help", markup=False)
            with Horizontal(classes="form-line"):
                yield Label("Fork's name", classes="form-label")
                yield Input(value=escape_controls(self._suggestion), id="fork-name", compact=True)
            moves = "moves" if len(self._later) == 1 else "move"
            yield Label(f"Rewind: {run} goes back to {checkpoint} and its line past it is abandoned; "
                        f"{escape_controls(later)} {moves} to {run}/rewound/ (kept, never resumed from).",
                        classes="field-help", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Rewind", id="rewind", variant="warning")
                yield Button("Fork", id="fork", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#fork", Button).focus()

    def _fork_name(self) -> str | None:
        return unescape_controls(self.query_one("#fork-name", Input).value.strip()) or None

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(("fork", self._fork_name()))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "fork":
            self.dismiss(("fork", self._fork_name()))
        elif event.button.id == "rewind":
            self.dismiss(("rewind", None))
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)
