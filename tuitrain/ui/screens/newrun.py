"""The New-run dialog: pick a preset (shipped or a path), see and change how it launches, launch.

The launcher and processes per node start from the preset's own `[launch]` table, and only
what the user changes becomes an override, so a torchrun preset launches under torchrun.
The dialog posts `RunLaunched` to the app (which highlights the run, and opens its
dashboard when the dialog was opened from the editor) or, in edit mode, `EditPreset`.

The launch settings start from the preset; the run name (empty: `<preset>-<timestamp>`) is
checked here and passed to `launch()`, which refuses a taken name with a free one suggested.
"""

from __future__ import annotations

import tomllib
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
from tuitrain.textfmt import escape_controls, unescape_controls
from tuitrain.ui.navigation import EditPreset, RunLaunched

LAUNCHERS = ("local", "torchrun")
NPROC_WORDS = ("auto", "gpu", "cpu")


def preset_launch(path: Path) -> tuple[dict, str | None]:
    """`launcher` and `nproc_per_node` as the preset has them (defaults filled), and a
    one-line problem when its `[launch]` table cannot be read."""
    from tuitrain.config import schema

    values = {key: schema.field(key).default for key in ("launcher", "nproc_per_node")}
    try:
        table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("launch", {})
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return values, f"{path}: cannot read its [launch] table ({exc})"
    if isinstance(table, dict):
        values.update({k: table[k] for k in values if k in table})
    return values, None


def parse_nproc(text: str) -> int | str:
    """Processes per node as typed: a number, or auto / gpu / cpu."""
    value = text.strip() or "1"
    if value.isdigit() and int(value) >= 1:
        return int(value)
    if value in NPROC_WORDS:
        return value
    raise TuitrainError(f"processes per node: {value!r} is not a number >= 1 (or auto, gpu, cpu)")


def launch_overrides(preset: dict, launcher: str, nproc: int | str) -> list[str]:
    """`--set` strings for what differs from the preset's own `[launch]` values."""
    overrides = []
    if launcher != preset.get("launcher"):
        overrides.append(f'launch.launcher="{launcher}"')
    if launcher == "local":
        nproc = 1  # one process: a preset's torchrun count does not apply
    if nproc != preset.get("nproc_per_node"):
        overrides.append(f"launch.nproc_per_node={nproc}" if isinstance(nproc, int)
                         else f'launch.nproc_per_node="{nproc}"')
    return overrides


class NewRunScreen(ModalScreen[object]):
    """Choose a preset and how it launches; `edit_only` opens the editor instead of launching."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="newrun.cancel")]

    class Launched(Message):
        """The launch finished (info is a RunInfo, or error a message)."""

        def __init__(self, info=None, error: str | None = None) -> None:
            super().__init__()
            self.info = info
            self.error = error

    def __init__(self, preset_path: Path | None = None, *, edit_only: bool = False,
                 open_dashboard: bool = False) -> None:
        super().__init__()
        self.edit_only = edit_only
        self.open_dashboard = open_dashboard
        self.preset_path = preset_path
        self.from_preset: dict = {}

    def compose(self) -> ComposeResult:
        shipped = shipped_presets() if _has_presets() else {}
        options = [(name, str(path)) for name, path in shipped.items()]
        default = shipped.get("quickstart") or next(iter(shipped.values()), None)
        initial = str(self.preset_path or default or "")
        with Vertical(id="dialog"):
            yield Label("Edit a preset" if self.edit_only else "New run", classes="dialog-title")
            with Horizontal(classes="form-line"):
                yield Label("Shipped preset", classes="form-label")
                yield Select(options, id="newrun-shipped", allow_blank=True, prompt="(or type a path below)",
                             compact=True, value=initial if initial in dict(options).values() else Select.NULL)
            with Horizontal(classes="form-line"):
                yield Label("Preset path", classes="form-label")
                yield Input(value=initial, placeholder="path/to/preset.toml", id="newrun-path", compact=True)
            if not self.edit_only:
                with Horizontal(classes="form-line"):
                    yield Label("Run name", classes="form-label")
                    yield Input(placeholder="default: <preset>-<timestamp>", id="newrun-name", compact=True)
                with Horizontal(classes="form-line"):
                    yield Label("Launcher", classes="form-label")
                    yield Select([(name, name) for name in LAUNCHERS], value="local", allow_blank=False,
                                 id="newrun-launcher", compact=True)
                with Horizontal(classes="form-line"):
                    yield Label("Processes per node", classes="form-label")
                    yield Input(value="1", placeholder="a number, or auto / gpu / cpu", id="newrun-nproc",
                                compact=True)
                yield Static("", id="newrun-from", markup=False, classes="field-help")
            yield Static("", id="newrun-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button("Edit", id="edit")
                if not self.edit_only:
                    yield Button("Launch", id="launch", variant="primary")

    def on_mount(self) -> None:
        self._load_launch()

    def _load_launch(self) -> None:
        """Fill the launcher and processes from the preset now named (when it is a file)."""
        if self.edit_only:
            return
        text = self.query_one("#newrun-path", Input).value.strip()
        try:
            path = resolve_preset_path(text) if text else None
        except TuitrainError:  # a word being typed: no such preset yet
            return
        if path is None or not path.is_file():
            return
        values, problem = preset_launch(path)
        self.from_preset = values
        launcher = values.get("launcher")
        self.query_one("#newrun-launcher", Select).value = launcher if launcher in LAUNCHERS else "local"
        self.query_one("#newrun-nproc", Input).value = str(values.get("nproc_per_node", 1))
        self._set_nproc_enabled()
        note = f"from the preset: {launcher}, {values.get('nproc_per_node')} process(es) per node"
        self.query_one("#newrun-from", Static).update(escape_controls(problem or note))

    def _set_nproc_enabled(self) -> None:
        self.query_one("#newrun-nproc", Input).disabled = self.query_one("#newrun-launcher", Select).value != "torchrun"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "newrun-shipped" and event.value is not Select.NULL:
            self.query_one("#newrun-path", Input).value = str(event.value)
        elif event.select.id == "newrun-launcher":
            self._set_nproc_enabled()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "newrun-path":
            self._load_launch()

    def _path(self) -> Path | None:
        text = self.query_one("#newrun-path", Input).value.strip()
        if not text:
            self._error("Choose a shipped preset or type a path.")
            return None
        try:
            path = resolve_preset_path(text)
        except TuitrainError as exc:  # an unknown word, with the shipped preset it is closest to
            self._error(str(exc))
            return None
        if not path.is_file():
            self._error(f"{path}: no such preset file")
            return None
        return path

    def _error(self, text: str) -> None:
        self.query_one("#newrun-error", Static).update(escape_controls(text))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        elif event.button.id == "edit":
            path = self._path()
            if path is not None:
                self.dismiss(None)
                self.app.post_message(EditPreset(path))
        elif event.button.id == "launch":
            self.start_launch()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.edit_only:
            self.query_one("#edit", Button).press()
        else:
            self.start_launch()

    def start_launch(self) -> None:
        """Check the choices and launch on a worker (spawning takes a moment)."""
        path = self._path()
        if path is None:
            return
        launcher = str(self.query_one("#newrun-launcher", Select).value)
        name = unescape_controls(self.query_one("#newrun-name", Input).value.strip()) or None
        try:
            nproc = parse_nproc(self.query_one("#newrun-nproc", Input).value)
            if name is not None:
                from tuitrain.runs.names import check_name

                check_name(name)
        except TuitrainError as exc:
            self._error(str(exc))
            return
        self._error("Launching…")
        self.query_one("#launch", Button).disabled = True
        self._launch(path, launch_overrides(self.from_preset, launcher, nproc), name)

    @work(thread=True, exclusive=True, group="launch")
    def _launch(self, path: Path, overrides: list[str], name: str | None = None) -> None:
        try:
            from tuitrain.runs.launch import launch

            info = launch(path, overrides, name=name)
        except TuitrainError as exc:
            self.post_message(self.Launched(error=exc.one_line() if hasattr(exc, "one_line") else str(exc)))
            return
        self.post_message(self.Launched(info=info))

    def on_new_run_screen_launched(self, message: Launched) -> None:
        if message.error:
            self._error(message.error)
            self.query_one("#launch", Button).disabled = False
            return
        self.app.post_message(RunLaunched(message.info, open_dashboard=self.open_dashboard))
        self.dismiss(message.info)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _has_presets() -> bool:
    try:
        return bool(shipped_presets())
    except FileNotFoundError:
        return False
