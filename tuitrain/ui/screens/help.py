"""The `?` screen: every key of the screen underneath, with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Label


class HelpScreen(ModalScreen[None]):
    """Lists the bindings active on `target` (a screen) and the app-wide keys."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, target: Screen) -> None:
        super().__init__()
        self._target = target

    def rows(self) -> list[tuple[str, str]]:
        """(key, description) of every described binding of the target screen."""
        rows: list[tuple[str, str]] = []
        seen: set[str] = set()
        for key, active in self._target.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.description in seen and key in seen:
                continue
            seen.add(key)
            display = self.app.get_key_display(binding)
            rows.append((display, binding.tooltip or binding.description))
        rows.append(("ctrl+p", "Command palette: every action by name"))
        return rows

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Keys — {self._target.__class__.__name__.removesuffix('Screen')}", classes="dialog-title")
            table = DataTable(id="help-table", cursor_type="none", show_cursor=False)
            table.add_columns("key", "action")
            for key, text in self.rows():
                table.add_row(key, text)
            yield table
            yield Label("escape closes", classes="field-help")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
