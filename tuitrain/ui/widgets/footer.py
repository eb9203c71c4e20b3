"""A footer that shows as many of the screen's keys as fit its width, drawn as one line.

Textual's footer shows every binding with `show=True`, so a wide screen's keys ran off a
narrow terminal (and `q` and `?` with them); it is also a widget per key, each styled and
laid out as every screen opens. This one is one widget: it draws the screen's own keys
first (a focused table's `enter` does not hide the screen's), then the app's, leaving out
the screen's `FOOTER_OPTIONAL` actions, last listed first, only as far as the width needs,
and then the palette's own key (ctrl+p, which `?` help lists). Every key is always in `?`
help and the command palette. A click on a key presses it.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

PALETTE = "palette"


def _cost(key: str, description: str) -> int:
    return len(key) + len(description) + 3  # " k " then "description "


class KeyFooter(Widget):
    """The screen's main keys, then as many optional ones as fit."""

    COMPONENT_CLASSES = {"key-footer--key", "key-footer--description"}
    DEFAULT_CSS = """
    KeyFooter {
        dock: bottom;
        height: 1;
        background: $footer-background;
        color: $footer-description-foreground;
        & > .key-footer--key { color: $footer-key-foreground; background: $footer-key-background;
                               text-style: bold; }
        & > .key-footer--description { color: $footer-description-foreground; }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.spans: list[tuple[str, int, int, str]] = []  # (key shown, first cell, end cell, key)

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.refresh())

    def _candidates(self) -> list[tuple]:
        """(binding, enabled) of each action to show: the screen's own, then the app's and the
        focused widget's."""
        screen = self.screen
        seen: dict[str, tuple] = {}
        for bindings in screen._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.show and binding.action not in seen:
                    allowed = screen.check_action(binding.action, ())
                    if allowed is not False:
                        seen[binding.action] = (binding, allowed is True)
        declared = [b.action for b in getattr(screen, "BINDINGS", []) if hasattr(b, "action")]
        ordered = sorted(seen.values(), key=lambda e: declared.index(e[0].action)
                         if e[0].action in declared else len(declared))
        others: dict[str, tuple] = {}
        for node, binding, enabled, _tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in seen and binding.action not in others and node is not screen:
                others[binding.action] = (binding, enabled)
        return ordered + list(others.values())

    def fitting(self, width: int) -> tuple[list[tuple], bool]:
        """The (binding, enabled) shown at `width` columns, and whether the palette's key fits too."""
        shown = self._candidates()
        optional = list(getattr(self.screen, "FOOTER_OPTIONAL", ()))
        palette_width = _cost(self.app.get_key_display(self._palette_binding()), PALETTE) + 1

        def total() -> int:
            return sum(_cost(self.app.get_key_display(b), b.description) for b, _ in shown)

        palette = self.app.ENABLE_COMMAND_PALETTE
        while total() > width - (palette_width if palette else 0) and optional:
            action = optional.pop()
            shown = [entry for entry in shown if entry[0].action != action]
        if palette and total() > width - palette_width:
            palette = False
        return shown, palette

    def _palette_binding(self):
        from textual.binding import Binding

        return Binding(self.app.COMMAND_PALETTE_BINDING, "command_palette", PALETTE)

    def render(self) -> Text:
        width = self.size.width or self.app.size.width
        shown, palette = self.fitting(width)
        key_style = self.get_component_rich_style("key-footer--key", partial=True)
        text_style = self.get_component_rich_style("key-footer--description", partial=True)
        out = Text(no_wrap=True, overflow="crop")
        spans = []

        dim = Style(dim=True)

        def add(display: str, description: str, key: str, enabled: bool) -> None:
            start = out.cell_len
            out.append(f" {display} ", style=key_style if enabled else key_style + dim)
            out.append(f"{description} ", style=text_style if enabled else text_style + dim)
            spans.append((display, start, out.cell_len, key))

        for binding, enabled in shown:
            add(self.app.get_key_display(binding), binding.description, binding.key.split(",")[0], enabled)
        if palette:
            binding = self._palette_binding()
            display = self.app.get_key_display(binding)
            out.append(" " * max(1, width - out.cell_len - _cost(display, PALETTE)))
            add(display, PALETTE, binding.key, True)
        self.spans = spans
        return out

    def on_click(self, event) -> None:
        for _display, start, end, key in self.spans:
            if start <= event.x < end:
                event.stop()
                self.app.simulate_key(key)
                return
