"""The Textual application: themes from `themes/`, the Runs screen as home, navigation.

Screens ask to go somewhere by posting a `tuitrain.ui.navigation` message; the handlers
here push the screen asked for (screens never import each other). Each screen module is
imported when first needed, so the first frame waits only for the Runs screen.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.binding import Binding

from tuitrain.ui import navigation
from tuitrain.ui.commands import TuitrainCommands
from tuitrain.ui.glyphs import locale_is_utf8
from tuitrain.ui.themes import DEFAULT_THEME, ThemeSpec, chart_variables, load_themes


# key -> (UTF-8 display, ASCII display)
_KEY_DISPLAY = {"space": ("␣", "spc"), "enter": ("⏎", "ret"), "question_mark": ("?", "?")}


class TuitrainApp(App):
    """tuitrain's terminal app.

    `runs_root`: the runs root the user chose (`--runs` / `$TUITRAIN_RUNS`; None lists every
    run found). `theme`: a theme name (else the one remembered, else the default).
    `ascii_only`: draw charts and borders in ASCII (default: when the locale is not UTF-8).
    `compare`: open on the compare screen of these run directories.
    """

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses live elsewhere
    TITLE = "tuitrain"
    COMMANDS = {TuitrainCommands}
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="help", tooltip="Help: every key of this screen"),
        Binding("ctrl+t", "cycle_theme", "Theme", id="theme", show=False, tooltip="Switch to the next theme"),
    ]

    def __init__(self, runs_root: Path | None = None, theme: str | None = None, *,
                 ascii_only: bool | None = None, compare: list[Path] | None = None,
                 show_all: bool = False) -> None:
        super().__init__()
        self.runs_root = runs_root
        self.show_all = show_all
        self.ascii_only = (not locale_is_utf8()) if ascii_only is None else ascii_only
        self._compare = compare
        self.theme_specs: dict[str, ThemeSpec] = load_themes()
        for spec in self.theme_specs.values():
            self.register_theme(spec.theme)
        self._startup_notes: list[str] = []
        wanted = theme or self._remembered_theme() or DEFAULT_THEME
        if wanted in self.theme_specs or wanted in self.available_themes:
            self._start_with_theme(wanted)
        elif theme:
            self._startup_notes.append(f"unknown theme {theme!r} (known: {', '.join(self.theme_specs)})")
        self._ascii_filter = None
        if self.ascii_only:
            from tuitrain.ui.glyphs import ascii_filter

            self.add_class("-ascii")
            self._ascii_filter = ascii_filter()

    def _remembered_theme(self) -> str | None:
        from tuitrain.ui.settings import load_settings

        settings, problem = load_settings()
        if problem:
            self._startup_notes.append(problem)
        value = settings.get("theme")
        return value if isinstance(value, str) else None

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

    def get_line_filters(self):
        filters = list(super().get_line_filters())
        return filters + [self._ascii_filter] if self._ascii_filter is not None else filters

    def get_key_display(self, binding: Binding) -> str:
        """Short names for the keys with long ones (the footer has 80 columns to share)."""
        shown = _KEY_DISPLAY.get(binding.key.split(",")[0])
        if shown is not None and binding.key_display is None:
            return shown[1] if self.ascii_only else shown[0]
        return super().get_key_display(binding)

    def get_css_variables(self) -> dict[str, str]:
        variables = super().get_css_variables()
        variables.update(chart_variables(variables))
        return variables

    def get_default_screen(self):
        """The Runs screen is the app's first and bottom screen (no empty screen beneath it)."""
        from tuitrain.ui.screens.runs import RunsScreen

        self.runs_screen = RunsScreen(runs_root=self.runs_root, show_all=self.show_all)
        return self.runs_screen

    def on_mount(self) -> None:
        if self._compare:
            self.post_message(navigation.OpenCompare(self._compare))
        for note in self._startup_notes:
            self.notify(note, severity="warning", markup=False)
        self.watch(self, "theme", self._remember_theme, init=False)

    def _remember_theme(self, name: str) -> None:
        from tuitrain.ui.settings import save_setting

        problem = save_setting("theme", name)
        if problem:
            self.notify(problem, severity="warning", markup=False)

    # Navigation ------------------------------------------------------------

    def on_open_dashboard(self, message: navigation.OpenDashboard) -> None:
        from tuitrain.ui.screens.dashboard import DashboardScreen

        self.push_screen(DashboardScreen(message.run_dir))

    def on_open_compare(self, message: navigation.OpenCompare) -> None:
        from tuitrain.ui.screens.compare import CompareScreen

        self.push_screen(CompareScreen(message.run_dirs))

    def on_open_sweep(self, message: navigation.OpenSweep) -> None:
        from tuitrain.ui.screens.sweep import SweepScreen

        self.push_screen(SweepScreen(message.sweep_dir))

    def on_edit_preset(self, message: navigation.EditPreset) -> None:
        from tuitrain.ui.screens.editor import EditorScreen

        self.push_screen(EditorScreen(message.path))

    def on_new_run(self, message: navigation.NewRun) -> None:
        from tuitrain.ui.screens.newrun import NewRunScreen

        self.push_screen(NewRunScreen(preset_path=message.preset_path, edit_only=message.edit_only,
                                      open_dashboard=message.open_dashboard))

    def on_run_launched(self, message: navigation.RunLaunched) -> None:
        self.notify(f"Launched {message.info.name}", markup=False)
        home = getattr(self, "runs_screen", None)
        if home is not None:
            home.focus_run(message.info.run_dir)
        if message.open_dashboard:
            self.post_message(navigation.OpenDashboard(message.info.run_dir))

    # Keys ------------------------------------------------------------------

    def action_help(self) -> None:
        """Show the help screen listing the current screen's keys."""
        from tuitrain.ui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_cycle_theme(self) -> None:
        """Switch to the next tuitrain theme (remembered for the next start)."""
        names = list(self.theme_specs) or list(self.available_themes)
        index = names.index(self.theme) if self.theme in names else -1
        self.theme = names[(index + 1) % len(names)]
        self.notify(f"Theme: {self.theme}", markup=False)

    def ring_bell(self) -> None:
        """The terminal bell, for a run that finished or failed."""
        self.bell()
