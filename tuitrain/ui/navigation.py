"""Where a screen asks to go: messages the app handles by pushing the screen asked for.

Screens never import each other; they post one of these to the app (`self.app.post_message`)
and `TuitrainApp` owns the navigation. A screen used on its own (in a test app) simply has
nobody answering.
"""

from __future__ import annotations

from pathlib import Path

from textual.message import Message


class OpenDashboard(Message):
    """Show the dashboard of the run in `run_dir`."""

    def __init__(self, run_dir: Path | str) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)


class OpenCompare(Message):
    """Overlay the runs in `run_dirs`."""

    def __init__(self, run_dirs: list[Path | str]) -> None:
        super().__init__()
        self.run_dirs = [Path(d) for d in run_dirs]


class OpenSweep(Message):
    """Show the sweep in `sweep_dir`: its results table and its members' curves."""

    def __init__(self, sweep_dir: Path | str) -> None:
        super().__init__()
        self.sweep_dir = Path(sweep_dir)


class EditPreset(Message):
    """Open the preset editor on `path` (a run's frozen `preset.toml` opens read-only)."""

    def __init__(self, path: Path | str) -> None:
        super().__init__()
        self.path = Path(path)


class NewRun(Message):
    """Open the New-run dialog: `preset_path` preselected; `edit_only` offers no launch;
    `open_dashboard` shows the run's dashboard once it is launched (from the editor)."""

    def __init__(self, preset_path: Path | str | None = None, *, edit_only: bool = False,
                 open_dashboard: bool = False) -> None:
        super().__init__()
        self.preset_path = Path(preset_path) if preset_path is not None else None
        self.edit_only = edit_only
        self.open_dashboard = open_dashboard


class RunLaunched(Message):
    """A run was launched (`info` is its `RunInfo`): the Runs screen highlights it, and the
    app opens its dashboard when `open_dashboard`."""

    def __init__(self, info, open_dashboard: bool = False) -> None:
        super().__init__()
        self.info = info
        self.open_dashboard = open_dashboard
