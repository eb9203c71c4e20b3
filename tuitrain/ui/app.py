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
            self.theme = wanted

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
