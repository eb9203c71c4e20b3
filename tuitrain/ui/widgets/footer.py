"""A footer that shows as many of the screen's keys as fit its width.

Textual's footer shows every binding with `show=True`, so a wide screen's keys ran off a
narrow terminal (and `q` and `?` with them). This one leaves out the screen's
`FOOTER_OPTIONAL` actions, last listed first, only as far as the width needs; the rest
are always in `?` help and the command palette. When even the main keys need the room,
the palette's own key (ctrl+p, which `?` lists) leaves the footer too.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

PALETTE_WIDTH = 14  # " ^p palette " with its border and padding


def _cost(key: str, description: str) -> int:
    return len(key) + len(description) + 3  # " k " then "description "


class KeyFooter(Footer):
    """The screen's main keys, then as many optional ones as fit."""

    _shown: tuple = ()

    def _candidates(self) -> list[tuple]:
        """(binding, enabled, tooltip) of each action to show: the screen's own first (a focused
        table's `enter` must not hide the screen's), then the app's and the focused widget's."""
        screen = self.screen
        seen: dict[str, tuple] = {}
        for bindings in screen._bindings.key_to_bindings.values():
            for binding in bindings:
                if binding.show and binding.action not in seen:
                    allowed = screen.check_action(binding.action, ())
                    if allowed is not False:
                        seen[binding.action] = (binding, allowed is True, binding.tooltip)
        declared = [b.action for b in getattr(screen, "BINDINGS", []) if hasattr(b, "action")]
        ordered = sorted(seen.values(), key=lambda e: declared.index(e[0].action)
                         if e[0].action in declared else len(declared))
        others = {}
        for node, binding, enabled, tooltip in screen.active_bindings.values():
            if binding.show and binding.action not in seen and binding.action not in others and node is not screen:
                others[binding.action] = (binding, enabled, tooltip)
        return ordered + list(others.values())

    def fitting(self, width: int) -> tuple[list[tuple], bool]:
        """The bindings shown at `width` columns, and whether the palette's key fits too."""
        shown = self._candidates()
        optional = list(getattr(self.screen, "FOOTER_OPTIONAL", ()))

        def total() -> int:
            return sum(_cost(self.app.get_key_display(b), b.description) for b, _, _ in shown)

        palette = self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE
        while total() > width - (PALETTE_WIDTH if palette else 0) and optional:
            action = optional.pop()
            shown = [entry for entry in shown if entry[0].action != action]
        if palette and total() > width - PALETTE_WIDTH:
            palette = False  # ctrl+p still opens it; `?` help says so
        return shown, palette

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        shown, palette = self.fitting(width)
        self._shown = (tuple((b.action, enabled) for b, enabled, _ in shown), palette)
        for binding, enabled, tooltip in shown:
            key = FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            disabled=not enabled, tooltip=tooltip or binding.tooltip,
                            classes="-compact" if self.compact else "")
            # Set before mounting, not bound: a bound value restyles every key once more on mount.
            key.set_reactive(FooterKey.compact, self.compact)
            yield key
        if palette:
            found = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
            if found is not None:
                _node, binding, enabled, _tooltip = found
                yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description,
                                binding.action, classes="-command-palette", disabled=not enabled,
                                tooltip=binding.tooltip or binding.description)

    def _signature(self, width: int) -> tuple:
        shown, palette = self.fitting(width)
        return tuple((b.action, enabled) for b, enabled, _ in shown), palette

    def bindings_changed(self, screen) -> None:
        """Recompose only when what the footer shows changes (focus moves call this often,
        and each recompose mounts every key again)."""
        if self._bindings_ready and self.is_attached and screen is self.screen:
            if self._signature(self.size.width or self.app.size.width) == self._shown:
                return
        super().bindings_changed(screen)

    def on_resize(self, event) -> None:
        if not self._bindings_ready:
            return
        if self._signature(event.size.width) != self._shown:
            self.call_after_refresh(self.recompose)
