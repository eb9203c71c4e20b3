"""The `?` screen: the keys of the screen underneath first, then the app's, then the focused
widget's (a table's cursor keys), each group under its heading; it scrolls."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Label, Static


def _title(screen: Screen) -> str:
    return screen.__class__.__name__.removesuffix("Screen") or "screen"


class HelpScreen(ModalScreen[None]):
    """Lists the bindings active on `target` (a screen), grouped."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close", id="help.close")]

    def __init__(self, target: Screen) -> None:
        super().__init__()
        self._target = target

    def groups(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(heading, [(keys, what they do)]) for the screen, the app, and the focused widget."""
        screen, app = self._target, self.app
        found: dict[int, dict[str, tuple[list[str], str]]] = {}
        owners: dict[int, object] = {}
        for _key, active in screen.active_bindings.items():
            binding, node = active.binding, active.node
            if not binding.description:
                continue
            owners[id(node)] = node
            actions = found.setdefault(id(node), {})
            keys, text = actions.setdefault(binding.action, ([], binding.tooltip or binding.description))
            display = app.get_key_display(binding)
            if display not in keys:
                keys.append(display)
        # the screen's own keys in the order it declares them, then the ones it inherits
        declared = [b.action for b in getattr(screen, "BINDINGS", []) if hasattr(b, "action")]
        if id(screen) in found:
            own = found[id(screen)]
            found[id(screen)] = dict(sorted(own.items(), key=lambda item: declared.index(item[0])
                                            if item[0] in declared else len(declared)))
        order = [id(screen), id(app)] + [k for k in found if k not in (id(screen), id(app))]
        out = []
        for ident in order:
            if ident not in found:
                continue
            node = owners[ident]
            if node is screen:
                heading = f"{_title(screen)} screen"
            elif node is app:
                heading = "Everywhere"
            else:
                heading = f"In the focused {node.__class__.__name__.lower()}"
            rows = [(" ".join(keys), text) for keys, text in found[ident].values()]
            if node is app:
                rows.append(("ctrl+p", "Command palette: every action by name"))
            out.append((heading, rows))
        return out

    def rows(self) -> list[tuple[str, str]]:
        """Every (keys, what they do), in the order shown."""
        return [row for _, rows in self.groups() for row in rows]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help-dialog"):
            yield Label(f"Keys: {_title(self._target)}", classes="dialog-title")
            with VerticalScroll(id="help-scroll"):
                for heading, rows in self.groups():
                    yield Static(Text(heading, style="bold underline"), classes="help-heading")
                    # keys, then what they do, wrapped at the dialog's width
                    grid = Table.grid(padding=(0, 2))
                    grid.add_column(no_wrap=True, style="bold")
                    grid.add_column(ratio=1)
                    for keys, text in rows:
                        grid.add_row(Text(keys), Text(text))
                    yield Static(grid, classes="help-keys")
            yield Label("up/down, PgUp/PgDn scroll; escape closes", classes="field-help")

    def on_mount(self) -> None:
        self.query_one("#help-scroll").focus()

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
