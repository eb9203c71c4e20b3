"""The command palette (ctrl+p): every key action of the current screen, plus themes."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class TuitrainCommands(Provider):
    """Offers each binding of the screen (with its description) and each theme."""

    def _commands(self) -> list[tuple[str, str, object]]:
        screen = self.screen
        commands: list[tuple[str, str, object]] = []
        seen: set[tuple[int, str]] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.action in ("command_palette",):
                continue
            ident = (id(active.node), binding.action)
            if ident in seen:
                continue
            seen.add(ident)
            label = f"{binding.description} ({binding.key_display or key})"
            help_text = binding.tooltip or f"Key: {key}"
            commands.append((label, help_text, partial(active.node.run_action, binding.action)))
        app = self.app
        for name in getattr(app, "theme_specs", {}):
            commands.append(
                (f"Theme: {name}", "Switch the colours of the app and its charts", partial(setattr, app, "theme", name))
            )
        return commands

    async def discover(self) -> Hits:
        for label, help_text, callback in self._commands():
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, help_text, callback in self._commands():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
