"""The Textual application: themes from `themes/`, the Runs screen as home, the palette."""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tuitrain.ui.commands import TuitrainCommands
from tuitrain.ui.themes import DEFAULT_THEME, ThemeSpec, load_themes


class TuitrainApp(App):
    """tuitrain's terminal app. `runs_root` overrides where runs are looked for."""

    CSS_PATH = "app.tcss"
    TITLE = "tuitrain"
    COMMANDS = App.COMMANDS | {TuitrainCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="Show the keys of this screen"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="theme", show=False, tooltip="Switch to the next theme"),
    ]

    def __init__(self, runs_root: Path | None = None, theme: str | None = None) -> None:
        super().__init__()
        self.runs_root = runs_root
        self.theme_specs: dict[str, ThemeSpec] = load_themes()
        for spec in self.theme_specs.values():
            self.register_theme(spec.theme)
        wanted = theme or DEFAULT_THEME
        if wanted in self.theme_specs or wanted in self.available_themes:
            self._start_with_theme(wanted)

    def _start_with_theme(self, name: str) -> None:
        """Assigning `theme` schedules a refresh that parses every CSS rule again; before the
        first parse, handing the new variables to the stylesheet does the same for less. The
        ANSI colour filter follows dark/light, so a change of that goes the usual way."""
        if self.get_theme(name).dark != self.current_theme.dark:
            self.theme = name
            return
        self.set_reactive(App.theme, name)
        self.stylesheet.set_variables(self.get_css_variables())
        self.update_classes({**{c: False for c in self.classes if c.startswith("-theme-")},
                             f"-theme-{name}": True}, update=False)

    def on_mount(self) -> None:
        from tuitrain.ui.screens.runs import RunsScreen

        self.push_screen(RunsScreen(runs_root=self.runs_root))

    def action_help(self) -> None:
        """Show the help screen listing the current screen's keys."""
        from tuitrain.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_cycle_theme(self) -> None:
        """Switch to the next tuitrain theme."""
        names = list(self.theme_specs) or list(self.available_themes)
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", markup=False)

    def ring_bell(self) -> None:
        """The terminal bell, for a run that finished or failed."""
        self.bell()
