"""Pick a preset (shipped or a path) and launch it locally or under torchrun, or edit it."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from tuitrain.errors import TuitrainError
from tuitrain.paths import resolve_preset_path, shipped_presets


def preset_for_run(run) -> Path:
    """The preset file to edit for a run: its source preset when it still exists, else its frozen copy."""
    name = getattr(run, "preset_name", None)
    if name:
        path = resolve_preset_path(str(name))
        if path.is_file():
            return path
    return Path(run.run_dir) / "preset.toml"


def launch_overrides(launcher: str, nproc: str) -> list[str]:
    """`--set` strings choosing the launcher (and processes per node for torchrun)."""
    overrides = [f'launch.launcher="{launcher}"']
    if launcher == "torchrun":
        value = nproc.strip() or "1"
        if not value.isdigit() and value not in ("auto", "gpu", "cpu"):
            raise TuitrainError(f"nproc: {value!r} is not a number of processes (or auto, gpu, cpu)")
        overrides.append(f"launch.nproc_per_node={value}" if value.isdigit() else f'launch.nproc_per_node="{value}"')
    return overrides


class NewRunScreen(ModalScreen[object]):
    """Choose a preset and a launcher; `mode="edit"` opens the editor instead of launching."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="newrun.cancel")]

    class Launched(Message):
        """The launch finished (info is a RunInfo, or error a message)."""

        def __init__(self, info=None, error: str | None = None) -> None:
            super().__init__()
            self.info = info
            self.error = error

    def __init__(self, mode: str = "launch", preset_path: Path | None = None) -> None:
        super().__init__()
        self.mode = mode
        self.preset_path = preset_path

    def compose(self) -> ComposeResult:
        shipped = shipped_presets() if _has_presets() else {}
        options = [(name, str(path)) for name, path in shipped.items()]
        default = shipped.get("quickstart") or next(iter(shipped.values()), None)
        initial = str(self.preset_path or default or "")
        with Vertical(id="dialog"):
            yield Label("Edit a preset" if self.mode == "edit" else "New run", classes="dialog-title")
            yield Label("Shipped preset")
            yield Select(options, id="newrun-shipped", allow_blank=True, prompt="(or type a path below)")
            yield Label("Preset path")
            yield Input(value=initial, placeholder="path/to/preset.toml", id="newrun-path")
            if self.mode != "edit":
                with Horizontal(classes="dialog-buttons launcher-row"):
                    yield Select([("local", "local"), ("torchrun", "torchrun")], value="local",
                                 allow_blank=False, id="newrun-launcher")
                    yield Input(value="1", placeholder="nproc", id="newrun-nproc", disabled=True)
            yield Static("", id="newrun-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Edit", id="edit")
                if self.mode != "edit":
                    yield Button("Launch", id="launch", variant="primary")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "newrun-shipped" and event.value is not Select.NULL:
            self.query_one("#newrun-path", Input).value = str(event.value)
        elif event.select.id == "newrun-launcher":
            self.query_one("#newrun-nproc", Input).disabled = event.value != "torchrun"

    def _path(self) -> Path | None:
        text = self.query_one("#newrun-path", Input).value.strip()
        if not text:
            self._error("Choose a shipped preset or type a path.")
            return None
        path = resolve_preset_path(text)
        if not path.is_file():
            self._error(f"{path}: no such preset file")
            return None
        return path

    def _error(self, text: str) -> None:
        self.query_one("#newrun-error", Static).update(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "edit":
            path = self._path()
            if path is not None:
                from tuitrain.ui.screens.editor import EditorScreen

                self.dismiss(None)
                self.app.push_screen(EditorScreen(path))
        elif event.button.id == "launch":
            self.start_launch()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.mode == "edit":
            self.query_one("#edit", Button).press()
        else:
            self.start_launch()

    def start_launch(self) -> None:
        """Validate the choices and launch on a worker (spawning takes a moment)."""
        path = self._path()
        if path is None:
            return
        launcher = self.query_one("#newrun-launcher", Select).value
        try:
            overrides = launch_overrides(str(launcher), self.query_one("#newrun-nproc", Input).value)
        except TuitrainError as exc:
            self._error(str(exc))
            return
        self._error("Launching…")
        self.query_one("#launch", Button).disabled = True
        self._launch(path, overrides)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, path: Path, overrides: list[str]) -> None:
        try:
            from tuitrain.runs.launch import launch

            info = launch(path, overrides)
        except TuitrainError as exc:
            self.post_message(self.Launched(error=exc.one_line() if hasattr(exc, "one_line") else str(exc)))
            return
        self.post_message(self.Launched(info=info))

    def on_new_run_screen_launched(self, message: Launched) -> None:
        if message.error:
            self._error(message.error)
            self.query_one("#launch", Button).disabled = False
            return
        self.app.notify(f"Launched {message.info.name}", markup=False)
        from tuitrain.ui.screens.runs import RunsScreen

        for screen in self.app.screen_stack:
            if isinstance(screen, RunsScreen):
                screen.focus_run(message.info.run_dir)
        self.dismiss(message.info)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _has_presets() -> bool:
    try:
        return bool(shipped_presets())
    except FileNotFoundError:
        return False
