"""The "save preset as" dialog: one path, control characters shown as `\\xNN` and read back."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from tuitrain.textfmt import escape_controls, unescape_controls


class SaveAsScreen(ModalScreen[Path | None]):
    """Ask for a path to save the preset to."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="saveas.cancel")]

    def __init__(self, suggestion: Path) -> None:
        super().__init__()
        self._suggestion = suggestion

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label("Save preset as", classes="dialog-title")
            yield Input(value=escape_controls(str(self._suggestion)), id="saveas-path")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Save", id="save", variant="primary")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._finish()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self._finish()
        else:
            self.dismiss(None)

    def _finish(self) -> None:
        text = unescape_controls(self.query_one(Input).value.strip())
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
