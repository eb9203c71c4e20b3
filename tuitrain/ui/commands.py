"""The command palette (ctrl+p): each action of the current screen and the app, once, with its key.

A command is found by the words of its key's tooltip ("New run from a preset", "Resume the
run…") as well as its footer label, and shows the key that does it. Keys of the focused
widget (a table's cursor moves) are left to `?` help. Every sweep the Runs screen lists has
a command that opens its Sweep screen ("Sweep: NAME").
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content


def _open_sweep(app, sweep_dir) -> None:
    from tuitrain.ui.navigation import OpenSweep

    app.post_message(OpenSweep(sweep_dir))


class TuitrainCommands(Provider):
    """The screen's and the app's actions, and one command per theme."""

    def _commands(self) -> list[tuple[str, str, object]]:
        screen, app = self.screen, self.app
        declared = {b.action for owner in (screen, app) for b in getattr(type(owner), "BINDINGS", [])
                    if hasattr(b, "action")} | {"quit"}
        found: dict[str, tuple] = {}  # action -> (binding, node, keys)
        for node in (screen, app):
            for bindings in node._bindings.key_to_bindings.values():
                for binding in bindings:
                    if binding.action not in declared or not binding.description:
                        continue
                    if node is screen and screen.check_action(binding.action, ()) is False:
                        continue
                    entry = found.setdefault(binding.action, (binding, node, []))
                    display = app.get_key_display(binding)
                    if display not in entry[2]:
                        entry[2].append(display)
        commands: list[tuple[str, str, object]] = []
        for binding, node, keys in found.values():
            label = binding.tooltip or binding.description
            shown = " ".join(keys)
            commands.append((f"{label}  ({shown})", f"{binding.description} · key {shown}",
                             partial(node.run_action, binding.action)))
        for sweep in getattr(getattr(app, "runs_screen", None), "sweeps", []):
            commands.append((f"Sweep: {sweep.info.name}", f"Open the sweep's results and curves · {sweep.progress}",
                             partial(_open_sweep, app, sweep.info.dir)))
        for name in getattr(app, "theme_specs", {}):
            commands.append((f"Theme: {name}", "Switch the colours of the app and its charts (remembered)",
                             partial(setattr, app, "theme", name)))
        return commands

    async def discover(self) -> Hits:
        for label, help_text, callback in self._commands():
            yield DiscoveryHit(Content(label), callback, text=label, help=help_text)  # Content: never markup

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, help_text, callback in self._commands():
            score = max(matcher.match(label), matcher.match(help_text) * 0.5)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
