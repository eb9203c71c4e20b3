"""The preset editor: groups on the left, the group's form, derived step counts and the LR chart.

The layout follows the terminal: from 120 columns the help sits beside each field and the
derived values beside the chart; narrower, the group list shows short names and the derived
values fit one line; under 34 rows the controls are one line high and the chart a few rows.
Text from the preset (paths, values, problems) is shown literally: no markup, control
characters escaped.

Every valid edit is written into a tomlkit `PresetDocument` (comments survive) and the
whole text is revalidated with `load_preset_text` a few times a second at most; problems
are shown at their fields, and the derived values and LR chart follow the edited preset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, OptionList, Static
from textual.widgets.option_list import Option

from tuitrain.errors import TuitrainError
from tuitrain.paths import presets_dir
from tuitrain.textfmt import escape_controls
from tuitrain.ui.screens.saveas import SaveAsScreen
from tuitrain.ui.widgets.derived import derived_box, derived_line, derived_values
from tuitrain.ui.widgets.form import FieldRow, GroupForm
from tuitrain.ui.widgets.lrchart import LRChart

VALIDATE_DELAY_S = 0.25
NARROW_WIDTH = 120  # below: short group names, help under each field, derived values on one line
WIDE_WIDTH = 160  # from here: the group list fits the full titles on one line
SHORT_HEIGHT = 34  # below: one-line controls, a chart of a few rows
# Group names that fit the narrow group list (the full titles head each form).
SHORT_TITLES = {
    "task": "Task", "core": "Core", "optimizer": "Optim & sched", "dataloader": "Data loader",
    "logging": "Log & save", "evaluation": "Evaluation", "distributed": "Distributed",
    "precision": "Precision", "reproducibility": "Seeds", "launch": "Launch",
}


def group_fields(group: str, task_name: str | None = None) -> list:
    """The schema fields of a group; the task group adds the chosen built-in task's options."""
    from tuitrain.config import schema
    from tuitrain.config.tasks import BUILTIN_TASKS

    fields = [f for f in schema.FIELDS.values() if f.group == group]
    if group == "task" and task_name in BUILTIN_TASKS:
        fields += list(BUILTIN_TASKS[task_name].options.values())
    return fields


class EditorScreen(Screen):
    """Edit one preset file."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Write the preset (comments are kept)"),
        Binding("f2", "save_as", "Save as", id="editor.save_as", tooltip="Write the preset to another file"),
        Binding("ctrl+l", "launch", "Launch", id="editor.launch", tooltip="Save, then launch a run of this preset"),
        Binding("ctrl+g", "focus_groups", "Groups", id="editor.groups", tooltip="Move to the group list"),
        Binding("escape", "back", "Back", id="editor.back", tooltip="Back to the runs"),
    ]

    def __init__(self, preset_path: Path | str) -> None:
        super().__init__()
        self.path = Path(preset_path)
        self.doc = None
        self.preset = None
        self.problems: list = []
        self.dirty = False
        self.group = "core"
        self._timer = None
        self.derived: dict[str, Any] = {}
        self.compact_derived = False

    def compose(self) -> ComposeResult:
        from tuitrain.config import schema

        yield Header()
        with Horizontal(id="editor-body"):
            yield OptionList(*[Option(g.title, id=g.key) for g in schema.GROUPS], id="editor-groups")
            with Vertical(id="editor-main"):
                yield GroupForm(id="editor-form")
                with Horizontal(id="editor-side"):
                    yield Static("", id="derived", markup=False)
                    yield LRChart(id="lr-chart")
        yield Static("", id="editor-status", markup=False)
        yield Footer()

    async def on_mount(self) -> None:
        from tuitrain.config import PresetDocument

        try:
            self.doc = PresetDocument.load(self.path)
        except (TuitrainError, OSError) as exc:
            self.notify(escape_controls(f"Cannot open {self.path}: {exc}"), severity="error", markup=False)
            self.app.pop_screen()
            return
        self._set_subtitle()
        self._apply_size(self.app.size.width, self.app.size.height)
        self.validate()
        groups = self.query_one("#editor-groups", OptionList)
        groups.highlighted = groups.get_option_index(self.group)
        await self.show_group(self.group)
        groups.focus()

    def on_resize(self, event) -> None:
        self._apply_size(event.size.width, event.size.height)

    def _apply_size(self, width: int, height: int) -> None:
        """Set the `-narrow` / `-short` layout classes (app.tcss) and what CSS cannot do."""
        narrow, short = width < NARROW_WIDTH, height < SHORT_HEIGHT
        self.set_class(narrow, "-narrow")
        self.set_class(width >= WIDE_WIDTH, "-wide")
        self.set_class(short, "-short")
        groups = self.query_one("#editor-groups", OptionList)
        groups.compact = narrow
        from tuitrain.config import schema

        for group in schema.GROUPS:
            groups.replace_option_prompt(group.key, SHORT_TITLES.get(group.key, group.title) if narrow else group.title)
        self.query_one(GroupForm).set_compact(short)
        if self.compact_derived != (narrow or short):
            self.compact_derived = narrow or short
            if self.doc is not None:
                self._update_derived()

    def _set_subtitle(self) -> None:
        """The file's path in the header (control characters escaped; never markup)."""
        self.sub_title = escape_controls(str(self.path)) + (" (modified)" if self.dirty else "")

    # Groups and values ---------------------------------------------------

    def value_of(self, group: str, key: str, default: Any) -> Any:
        """The value written in the document, or the field's default."""
        try:
            value = self.doc.get(group, key)
        except (KeyError, TuitrainError):
            return default
        return default if value is None else value

    async def show_group(self, group: str) -> None:
        """Show the form of `group`."""
        from tuitrain.config import schema

        self.group = group
        info = next(g for g in schema.GROUPS if g.key == group)
        task_name = self.value_of("task", "name", None)
        fields = group_fields(group, task_name)
        values = {f"{f.group}.{f.key}": self.value_of(f.group, f.key, f.default) for f in fields}
        await self.query_one(GroupForm).show(group, info.title, info.doc, fields, values)
        self._show_problems()

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        stale = event.option_index != event.option_list.highlighted
        if not stale and event.option.id and event.option.id != self.group:
            await self.show_group(event.option.id)

    async def select_group(self, group: str) -> None:
        """Highlight `group` in the list and show its form."""
        groups = self.query_one("#editor-groups", OptionList)
        groups.highlighted = groups.get_option_index(group)
        if self.group != group:
            await self.show_group(group)

    async def on_field_row_changed(self, event: FieldRow.Changed) -> None:
        field = event.field
        try:
            self.doc.set(field.group, field.key, event.value)
        except TuitrainError as exc:
            event.row.set_error(str(exc))
            return
        self.dirty = True
        self._set_subtitle()
        if field.group == "task" and field.key == "name":
            # The task's options follow its name; a rebuilt page gives the name its focus back.
            typing = self.focused is not None and event.row in self.focused.ancestors
            await self.show_group("task")
            name = self.query_one(GroupForm).rows().get("task.name")
            if typing and name is not None and name is not event.row:
                control = name.query_one(Input)
                control.focus()
                control.cursor_position = len(control.value)
        self._schedule_validation()

    def _schedule_validation(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY_S, self.validate)

    # Validation, derived values, chart ----------------------------------

    def validate(self) -> None:
        """Validate the edited text; update field errors, derived values and the chart."""
        from tuitrain.config import PresetErrors, load_preset_text

        self._timer = None
        try:
            self.preset = load_preset_text(self.doc.text(), str(self.path))
            self.problems = list(getattr(self.preset, "notices", []))
            errors = []
        except PresetErrors as exc:
            self.preset = None
            self.problems = list(exc.problems)
            errors = [p for p in exc.problems if getattr(p, "severity", "error") == "error"]
        except TuitrainError as exc:
            self.preset = None
            self.problems = []
            errors = [exc]
        self._show_problems()
        status = self.query_one("#editor-status", Static)
        status.set_class(bool(errors), "-error")
        if errors:
            lines = [escape_controls(str(e), tab=" ") for e in errors[:3]]
            status.update("\n".join(lines) + (f"\n… {len(errors) - 3} more" if len(errors) > 3 else ""))
        else:
            notes = [escape_controls(str(p), tab=" ") for p in self.problems][:2]
            status.update("✓ valid" + ("" if not notes else " · " + " · ".join(notes)))
        self._update_derived()

    def _show_problems(self) -> None:
        by_field: dict[str, str] = {}
        for problem in self.problems:
            name = getattr(problem, "field", "") or ""
            if name and getattr(problem, "severity", "error") == "error":
                msg = problem.message + (f" ({problem.suggestion})" if problem.suggestion else "")
                by_field.setdefault(name, msg)
        for name, row in self.query_one(GroupForm).rows().items():
            if row.error and row.error.startswith("⚑"):
                row.set_error(None)
            msg = by_field.get(name) or by_field.get(row.field.key)
            if msg and not row.has_class("-invalid"):
                row.set_error("⚑ " + msg)

    def _update_derived(self) -> None:
        panel = self.query_one("#derived", Static)
        chart = self.query_one(LRChart)
        if self.preset is None:
            panel.update("Derived values appear when the preset is valid.")
            chart.set_message("Fix the errors to see the LR schedule")
            return
        try:
            self.derived = derived_values(self.preset)
        except TuitrainError as exc:
            panel.update(escape_controls(str(exc), tab=" "))
            chart.set_message(escape_controls(str(exc), tab=" "))
            return
        args = self.preset.args
        panel.update(derived_line(self.derived) if self.compact_derived else derived_box(self.derived, args))
        plan = self.derived.get("_plan")
        if plan is None:
            chart.set_message("Total steps unknown: set max_steps")
        else:
            chart.set_schedule(args, plan.total_steps, plan.warmup_steps)

    # Actions -------------------------------------------------------------

    def _is_shipped(self, path: Path) -> bool:
        try:
            return path.resolve().parent == presets_dir().resolve()
        except FileNotFoundError:
            return False

    def action_save(self) -> bool:
        """Save in place (a shipped preset asks for a new path instead)."""
        if self._is_shipped(self.path):
            self.action_save_as()
            return False
        return self._save_to(self.path)

    def _save_to(self, path: Path) -> bool:
        try:
            self.doc.save(path)
        except (TuitrainError, OSError) as exc:
            self.notify(escape_controls(f"Cannot save {path}: {exc}"), severity="error", markup=False)
            return False
        self.path = path
        self.dirty = False
        self._set_subtitle()
        self.notify(escape_controls(f"Saved {path}"), markup=False)
        return True

    def action_save_as(self, then=None) -> None:
        suggestion = Path.cwd() / self.path.name if self._is_shipped(self.path) else self.path

        def chosen(path: Path | None) -> None:
            if path is not None and self._save_to(path) and then is not None:
                then()

        self.app.push_screen(SaveAsScreen(suggestion), chosen)

    def action_launch(self) -> None:
        """Save if needed, then open the launch dialog for this preset."""
        if self.preset is None:
            self.notify("The preset has errors; fix them before launching.", severity="error")
            return

        def open_launch() -> None:
            from tuitrain.ui.screens.newrun import NewRunScreen

            self.app.push_screen(NewRunScreen(preset_path=self.path))

        if self.dirty:
            if self._is_shipped(self.path):
                self.action_save_as(then=open_launch)
                return
            if not self._save_to(self.path):
                return
        open_launch()

    def action_focus_groups(self) -> None:
        self.query_one("#editor-groups", OptionList).focus()

    def action_back(self) -> None:
        if self.dirty:
            from tuitrain.ui.screens.confirm import ConfirmScreen

            def answered(ok: bool | None) -> None:
                if ok:
                    self.app.pop_screen()

            self.app.push_screen(ConfirmScreen("Discard unsaved changes?", escape_controls(str(self.path)), "Discard"),
                                 answered)
            return
        self.app.pop_screen()
