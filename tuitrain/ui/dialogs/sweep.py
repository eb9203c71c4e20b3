"""The sweep dialog (`ctrl+w` in the preset editor): vary fields, see the members and their
LR schedules overlaid, launch them all as one sweep.

Each axis is a field (a `group.key`, a bare key or `task.options.X`), how it varies (`grid`:
every combination; `zip`: together with the other zipped fields, equal lengths; `sample`:
drawn `count` times, e.g. `loguniform(1e-4,1e-2)`) and its values, comma-separated TOML
values as on the command line. The axes are read by `tuitrain.sweeps.spec.parse_cli`, as
`tuitrain sweep --grid/--zip/--sample` reads them, and every member is expanded and checked
(`tuitrain.sweeps.expand.expand`) a moment after each edit, off the UI thread: the dialog
shows the member count and every member's LR curve, or the one-line error of the first bad
axis or member, and then launches nothing. A sweep that samples without a seed gets one
drawn when the dialog opens, so the members previewed are the members launched.

`launch_sweep` runs in a worker; the dialog dismisses with the sweep's directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Button, Input, Label, Select, Static

from tuitrain.errors import TuitrainError
from tuitrain.textfmt import escape_controls
from tuitrain.ui.screens.base import VERTICAL
from tuitrain.ui.widgets.lrchart import LRChart
from tuitrain.ui.widgets.sweeptable import values_label

PREVIEW_DELAY_S = 0.3
MODES = ("grid", "zip", "sample")


def field_names(task_name: str | None) -> list[str]:
    """Every key a sweep can vary in this preset: the schema's and the task's options."""
    from tuitrain.config import schema
    from tuitrain.config.tasks import BUILTIN_TASKS

    names = list(schema.FIELDS)
    if task_name in BUILTIN_TASKS:
        names += [f"task.options.{key}" for key in BUILTIN_TASKS[task_name].options]
    return names


def values_hint(key: str) -> str:
    """What the values of `key` could look like (the placeholder of its values box)."""
    from tuitrain.config import schema

    field = schema.FIELDS.get(key)
    if field is None:
        return "values, e.g. 2,4"
    choices = list(getattr(field, "choices", None) or [])
    if choices:
        return ",".join(str(c) for c in choices[:3]) + (",…" if len(choices) > 3 else "")
    example = getattr(field, "example", None) or getattr(field, "default", None)
    return f"values, e.g. {example},…" if example not in (None, "") else "values, comma-separated"


def axes_of(spec) -> list[tuple[str, str, str]]:
    """(mode, key, values text) of each axis of a `SweepSpec` (a preset's `[sweep]` table)."""
    from tuitrain.config.writer import toml_value

    def text(values: list[Any]) -> str:
        return ",".join(v if isinstance(v, str) else toml_value(v) for v in values)

    return ([("grid", k, text(v)) for k, v in spec.grid.items()] + [("zip", k, text(v)) for k, v in spec.zip.items()]
            + [("sample", k, s.text) for k, s in spec.sample.items()])


def describe(spec, count: int) -> str:
    """`6 members: lr_scheduler_type (3) × warmup_ratio (2)`."""
    parts = [f"{k.rpartition('.')[2]} ({len(v)})" for k, v in spec.grid.items()]
    if spec.zip:
        parts.append("zip of " + ", ".join(k.rpartition(".")[2] for k in spec.zip) +
                     f" ({len(next(iter(spec.zip.values())))})")
    if spec.sample:
        parts.append(", ".join(f"{k.rpartition('.')[2]} ~ {s.text}" for k, s in spec.sample.items()) +
                     f" ({spec.count or 1} draws, seed {spec.seed})")
    return f"{count} member{'s' if count != 1 else ''}: " + " × ".join(parts)


class AxisRow(Horizontal):
    """One axis: how it varies, the field, its values."""

    def __init__(self, names: list[str], mode: str = "grid", key: str = "", values: str = "") -> None:
        super().__init__(classes="sweep-axis")
        self._names, self._mode, self._key, self._values = names, mode, key, values

    def compose(self) -> ComposeResult:
        yield Select([(m, m) for m in MODES], value=self._mode, allow_blank=False, compact=True, classes="axis-mode")
        suggest = SuggestFromList(self._names, case_sensitive=False)
        yield Input(self._key, placeholder="field, e.g. optimizer.learning_rate", suggester=suggest,
                    classes="axis-key", compact=True)
        yield Input(self._values, placeholder=values_hint(self._key), classes="axis-values", compact=True)

    @property
    def axis(self) -> tuple[str, str, str]:
        """(mode, key, values) as typed."""
        return (str(self.query_one(Select).value), self.query_one(".axis-key", Input).value.strip(),
                self.query_one(".axis-values", Input).value.strip())


class SweepDialog(ModalScreen[Path | None]):
    """Vary fields of the preset at `preset_path`; dismisses with the launched sweep's directory."""

    VERTICAL_BREAKPOINTS = VERTICAL  # under 34 rows (`-short`) the dialog packs its lines

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="sweepdialog.cancel"),
        Binding("ctrl+n", "add_axis", "Add axis", id="sweepdialog.add", tooltip="Vary one more field"),
        Binding("ctrl+d", "remove_axis", "Remove axis", id="sweepdialog.remove",
                tooltip="Remove the axis the cursor is on"),
        Binding("ctrl+l", "launch", "Launch", id="sweepdialog.launch", tooltip="Launch every member as one sweep"),
    ]

    class Previewed(Message):
        """The members of the sweep as typed (`token`: which edit), or the one-line error."""

        def __init__(self, token: int, text: str, schedules: list, error: str | None) -> None:
            super().__init__()
            self.token, self.text, self.schedules, self.error = token, text, schedules, error

    class Launched(Message):
        """`launch_sweep` returned the sweep's directory, or refused with `error`."""

        def __init__(self, sweep_dir: Path | None, error: str | None = None, refused: list[str] = ()) -> None:
            super().__init__()
            self.sweep_dir, self.error, self.refused = sweep_dir, error, list(refused)

    def __init__(self, preset_path: Path, *, task_name: str | None = None, first_key: str = "",
                 preset_sweep: dict | None = None, runs_root: Path | None = None) -> None:
        super().__init__()
        from tuitrain.sweeps.expand import draw_seed

        self.preset_path = Path(preset_path)
        self.names = field_names(task_name)
        self.runs_root = runs_root
        self.drawn_seed = draw_seed()
        self.axes: list[tuple[str, str, str]] = [("grid", first_key, "")]
        self.settings = {"count": "", "seed": "", "parallel": "", "name": ""}
        if preset_sweep:
            from tuitrain.sweeps.spec import from_table

            try:
                table = from_table(preset_sweep, str(preset_path))
                self.axes = axes_of(table) or self.axes
                self.settings.update({k: "" if getattr(table, k) is None else str(getattr(table, k))
                                      for k in ("count", "seed", "parallel")})
            except TuitrainError:
                pass  # the editor shows what is wrong with the table
        self.spec = None
        self.members = 0
        self.error: str | None = None
        self._token = 0
        self._timer = None
        self.launching = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="sweep-dialog"):
            yield Label(escape_controls(f"Sweep of {self.preset_path.name}"), classes="dialog-title", markup=False)
            yield Label("grid: every combination · zip: together, equal lengths · sample: count draws of "
                        "loguniform(a,b), uniform, intuniform or choice. Values comma-separated, as on the "
                        "command line.", classes="sweep-help", markup=False)
            with Vertical(id="sweep-axes"):
                for mode, key, values in self.axes:
                    yield AxisRow(self.names, mode, key, values)
            with Horizontal(classes="sweep-settings"):
                for key, hint in (("count", "samples"), ("seed", "drawn"), ("parallel", "1"),
                                  ("name", self.preset_path.stem + "-sweep")):
                    yield Label(key, classes="setting-label")
                    yield Input(self.settings[key], placeholder=hint, id=f"sweep-{key}", compact=True)
            yield Static("", id="sweep-summary", markup=False)
            yield LRChart(id="sweep-lr")
            yield Label("ctrl+n add axis · ctrl+d remove axis · ctrl+l launch · esc cancel", classes="sweep-keys",
                        markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("+ Axis (ctrl+n)", id="add")
                yield Button("Cancel (esc)", id="cancel")
                yield Button("Launch (ctrl+l)", id="launch", variant="primary")

    def on_mount(self) -> None:
        first = self.query(".axis-key").first(Input)
        (self.query(".axis-values").first(Input) if first.value else first).focus()
        self.preview()

    # Reading the axes --------------------------------------------------------

    def read_spec(self):
        """The `SweepSpec` of the dialog as typed (`SweepSpecError`, one line, when wrong)."""
        from tuitrain.sweeps.spec import SweepSpecError, parse_cli

        axes: dict[str, list[str]] = {m: [] for m in MODES}
        for row in self.query(AxisRow):
            mode, key, values = row.axis
            if not key and not values:
                continue
            if not key:
                raise SweepSpecError(f"{values}: which field? (type it before the values)")
            if not values:
                raise SweepSpecError(f"{key}: type its values ({values_hint(key)})")
            axes[mode].append(f"{key}={values}")
        if not any(axes.values()):
            raise SweepSpecError("type a field to vary and its values (ctrl+n adds another axis)")
        numbers: dict[str, int | None] = {}
        for key in ("count", "seed"):
            text = self.query_one(f"#sweep-{key}", Input).value.strip()
            if text and not text.lstrip("-").isdigit():
                raise SweepSpecError(f"{key} {text!r}: expected a whole number")
            numbers[key] = int(text) if text else None
        parallel = self.query_one("#sweep-parallel", Input).value.strip() or None
        if axes["sample"] and numbers["seed"] is None:
            numbers["seed"] = self.drawn_seed
        return parse_cli(grid=axes["grid"], zip=axes["zip"], sample=axes["sample"], count=numbers["count"],
                         seed=numbers["seed"], parallel=parallel)

    def sweep_name(self) -> str | None:
        return self.query_one("#sweep-name", Input).value.strip() or None

    def on_input_changed(self, event: Input.Changed) -> None:
        if "axis-key" in event.input.classes:
            values = event.input.parent.query_one(".axis-values", Input)
            values.placeholder = values_hint(event.input.value.strip())
        self._schedule()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._schedule()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.focus_next()

    def _schedule(self) -> None:
        self._token += 1  # an answer for an earlier edit is stale from now on
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(PREVIEW_DELAY_S, self.preview)

    def preview(self) -> None:
        """Read the axes now and expand the members off the UI thread."""
        from tuitrain.sweeps.spec import SweepSpecError

        self._timer = None
        self._token += 1
        try:
            self.spec = self.read_spec()
        except (SweepSpecError, TuitrainError) as exc:
            self.spec, self.members = None, 0
            self._show(str(exc), error=True)
            self.query_one(LRChart).set_message("LR schedules appear once the axes read well")
            return
        self._show("expanding the members…", error=False)
        self._expand(self._token, self.spec)

    @work(thread=True, exclusive=True, group="sweep-preview")
    def _expand(self, token: int, spec) -> None:
        from tuitrain.sweeps.expand import expand
        from tuitrain.ui.widgets.derived import derived_values

        try:
            members = expand(self.preset_path, spec)
            schedules = []
            for member in members:
                plan = derived_values(member.preset).get("_plan")
                if plan is None:
                    raise TuitrainError(f"sweep member {member.name}: total steps unknown (set core.max_steps)")
                label = values_label(member.values) or member.name
                schedules.append((label, member.preset.args, plan.total_steps, plan.warmup_steps))
        except TuitrainError as exc:
            self.post_message(self.Previewed(token, "", [], str(exc).splitlines()[0]))
            return
        self.post_message(self.Previewed(token, describe(spec, len(members)), schedules, None))

    def on_sweep_dialog_previewed(self, message: Previewed) -> None:
        if message.token != self._token:
            return  # the axes changed since
        chart = self.query_one(LRChart)
        if message.error:
            self.members = 0
            self._show(message.error, error=True)
            chart.set_message("No schedules: a member does not validate")
            return
        self.members = len(message.schedules)
        self._show(message.text, error=False)
        chart.set_schedules(message.schedules)

    def _show(self, text: str, error: bool) -> None:
        self.error = text if error else None
        summary = self.query_one("#sweep-summary", Static)
        summary.set_class(error, "-error")
        summary.update(escape_controls(text, tab=" "))

    # Keys ----------------------------------------------------------------------

    async def action_add_axis(self) -> None:
        row = AxisRow(self.names)
        await self.query_one("#sweep-axes").mount(row)
        row.query_one(".axis-key", Input).focus()

    async def action_remove_axis(self) -> None:
        rows = list(self.query(AxisRow))
        focused = self.focused
        row = next((r for r in rows if focused is not None and r in focused.ancestors), None)
        if row is None or len(rows) == 1:
            self.notify("A sweep varies at least one field." if row else "Move to the axis to remove first.",
                        severity="warning")
            return
        await row.remove()
        self.query(".axis-key").last(Input).focus()
        self._schedule()

    def action_launch(self) -> None:
        if self.launching:
            return
        if self._timer is not None:
            self.preview()  # an edit still waiting for its delay
        if self.spec is None or self.error:
            self.notify("Fix the sweep first: " + (self.error or "nothing to vary"), severity="error", markup=False)
            return
        self.launching = True
        self._show("launching…", error=False)
        self._launch(self.spec, self.sweep_name())

    @work(thread=True, exclusive=True, group="sweep-launch")
    def _launch(self, spec, name: str | None) -> None:
        from tuitrain.sweeps.queue import launch_sweep

        refused: list[str] = []
        try:
            sweep_dir = launch_sweep(self.preset_path, spec, name=name, root=self.runs_root,
                                     on_refused=lambda member, why: refused.append(f"{member}: {why}"))
        except TuitrainError as exc:
            self.post_message(self.Launched(None, str(exc).splitlines()[0]))
            return
        self.post_message(self.Launched(sweep_dir, refused=refused))

    def on_sweep_dialog_launched(self, message: Launched) -> None:
        self.launching = False
        if message.error:
            self._show(message.error, error=True)
            return
        for line in message.refused:  # members this device cannot train: the others run
            self.app.notify(escape_controls(f"refused {line}", tab=" "), severity="warning", markup=False, timeout=10)
        self.dismiss(message.sweep_dir)

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            await self.action_add_axis()
        elif event.button.id == "launch":
            self.action_launch()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)
