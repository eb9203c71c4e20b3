"""What to do with edits to a run's frozen preset, which is never overwritten.

`SAVE_CHOICES` lists the choices in order: `(id, button label, what it does)`. The editor
maps each id to a handler (`EditorScreen.record_save_handlers`): a new way to save is one
entry here and one handler there.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

SAVE_CHOICES: list[tuple[str, str, str]] = [
    ("new-preset", "Save as a new preset…", "Write these settings to a preset file of your own."),
    ("fork", "Fork this run with these changes",
     "Start a new run from this run's latest checkpoint with these settings (the run stays as it is)."),
]


class SaveChoiceScreen(ModalScreen[str | None]):
    """Offer the `choices`, one full-width button each (long labels fit at 80 columns);
    dismisses with the chosen id, or None (escape, Cancel)."""

    DEFAULT_CSS = """
    SaveChoiceScreen #dialog .dialog-choices { height: auto; margin-top: 1; }
    SaveChoiceScreen #dialog .dialog-choices Button { width: 100%; margin: 0 0 0 0; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="savechoice.cancel")]

    def __init__(self, title: str, detail: str, choices: list[tuple[str, str, str]] | None = None) -> None:
        super().__init__()
        self._title = title
        self._detail = detail
        self._choices = list(SAVE_CHOICES if choices is None else choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self._title, classes="dialog-title", markup=False)
            yield Label(self._detail, markup=False)
            for _ident, label, doc in self._choices:
                yield Label(f"{label.rstrip('…')}: {doc}", classes="field-help", markup=False)
            with Vertical(classes="dialog-choices"):
                for ident, label, _doc in self._choices:
                    yield Button(label, id=f"choice-{ident}", variant="primary")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one(f"#choice-{self._choices[0][0]}", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        ident = event.button.id or ""
        self.dismiss(ident.removeprefix("choice-") if ident.startswith("choice-") else None)

    def action_cancel(self) -> None:
        self.dismiss(None)
