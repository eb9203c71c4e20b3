"""The preset editor: groups on the left, the group's form, derived step counts and the LR chart.

The layout follows the breakpoint classes (`app.tcss`): from 120 columns the help sits
beside each field and the derived values beside the chart; narrower, the group list shows
short names and the derived values fit one line; under 34 rows the controls are one line
high and the chart a few rows. Text from the preset (paths, values, problems) is shown
literally: no markup, control characters escaped.

Every valid edit is written into a tomlkit `PresetDocument` (comments survive) and the
whole text is revalidated with `load_preset_text` a few times a second at most; problems
are shown at their fields. While any field holds text that does not parse, or the preset
has errors, saving and launching are refused, the status line counts the errors (`f8`
jumps to the next), and the derived values and the chart say so instead of showing
numbers of a preset that is not the one on screen.

A run's frozen `preset.toml` (a `preset.toml` beside a `run.json`) opens read-only: it is
the record of what the run trained with. It can be edited, and saving offers the choices
of `tuitrain.ui.dialogs.savechoice.SAVE_CHOICES` (save as a new preset, or fork the run with
these changes), each handled by `record_save_handlers()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.widgets import Header, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from tuitrain.errors import TuitrainError
from tuitrain.paths import presets_dir
from tuitrain.textfmt import escape_controls
from tuitrain.ui.glyphs import glyph
from tuitrain.ui.navigation import NewRun, OpenSweep, RunLaunched
from tuitrain.ui.screens.base import TuitrainScreen
from tuitrain.ui.widgets.derived import derived_box, derived_line, derived_values
from tuitrain.ui.widgets.footer import KeyFooter
from tuitrain.ui.widgets.form import DEFAULT, FieldRow, GroupForm
from tuitrain.ui.widgets.lrchart import LRChart

VALIDATE_DELAY_S = 0.25
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


def run_record_of(path: Path) -> Path | None:
    """The run directory whose frozen preset `path` is, or None for an ordinary preset file."""
    path = Path(path)
    if path.name == "preset.toml" and (path.parent / "run.json").is_file():
        return path.parent
    return None


class EditorScreen(TuitrainScreen):
    """Edit one preset file."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="editor.save", tooltip="Save the preset (comments are kept)"),
        Binding("f2", "save_as", "Save as", id="editor.save_as", tooltip="Save the preset as another file"),
        Binding("ctrl+l", "launch", "Launch", id="editor.launch", tooltip="Launch a run of this preset (saves first)"),
        # priority: the form's inputs would take ctrl+w (delete a word) first
        Binding("ctrl+w", "sweep", "Sweep", id="editor.sweep", priority=True,
                tooltip="Sweep…: vary fields, see every member's LR schedule, launch them all (saves first)"),
        Binding("f8", "next_error", "Next error", id="editor.next_error", tooltip="Go to the next field with an error"),
        Binding("ctrl+g", "focus_groups", "Groups", id="editor.groups", tooltip="Move to the group list"),
        Binding("escape", "back", "Back", id="editor.back", tooltip="Back to the runs"),
    ]
    FOOTER_OPTIONAL = ("focus_groups", "next_error", "sweep")

    dirty = reactive(False)
    """Edits not saved yet."""
    group = reactive("core")
    """The group whose form is shown."""

    def __init__(self, preset_path: Path | str) -> None:
        super().__init__()
        self.path = Path(preset_path)
        self.record_of = run_record_of(self.path)  # a run's frozen preset: read-only
        self.doc = None
        self.preset = None
        self.problems: list = []
        self.errors: list = []  # problems of severity error (the status line counts them)
        self._timer = None
        self.derived: dict[str, Any] = {}

    @property
    def read_only(self) -> bool:
        """Whether the file is a run's record, which saving never overwrites."""
        return self.record_of is not None

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
        yield KeyFooter()

    async def on_mount(self) -> None:
        from tuitrain.config import PresetDocument

        try:
            self.doc = PresetDocument.load(self.path)
        except (TuitrainError, OSError) as exc:
            self.notify(escape_controls(f"Cannot open {self.path}: {exc}"), severity="error", markup=False)
            self.app.pop_screen()
            return
        self._set_subtitle()
        self.validate()
        groups = self.query_one("#editor-groups", OptionList)
        groups.highlighted = groups.get_option_index(self.group)
        await self.show_group(self.group)
        groups.focus()

    def breakpoints_changed(self) -> None:
        """Short group names in a narrow list; one-line controls and derived values when short."""
        from tuitrain.config import schema

        groups = self.query_one("#editor-groups", OptionList)
        groups.compact = self.narrow
        for group in schema.GROUPS:
            title = SHORT_TITLES.get(group.key, group.title) if self.narrow else group.title
            groups.replace_option_prompt(group.key, title)
        self.query_one(GroupForm).set_compact(self.short)
        if self.doc is not None:
            self._update_derived()

    @property
    def compact_derived(self) -> bool:
        """The derived values as one line (a narrow or short terminal)."""
        return self.narrow or self.short

    def watch_dirty(self) -> None:
        self._set_subtitle()

    def _set_subtitle(self) -> None:
        """The file's path in the header (control characters escaped; never markup)."""
        note = f" (read-only: the preset run {self.record_of.name} trained with)" if self.read_only else ""
        self.sub_title = escape_controls(str(self.path)) + note + (" (modified)" if self.dirty else "")

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

        info = next(g for g in schema.GROUPS if g.key == group)
        self.set_reactive(EditorScreen.group, group)
        task_name = self.value_of("task", "name", None)
        fields = group_fields(group, task_name)
        values = {f"{f.group}.{f.key}": self.value_of(f.group, f.key, f.default) for f in fields}
        await self.query_one(GroupForm).show(group, info.title, info.doc, fields, values)
        self._show_problems()

    async def watch_group(self, group: str) -> None:
        # The reactive's first call comes after mount, also when the file could not be opened.
        if self.doc is not None:
            await self.show_group(group)

    async def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        stale = event.option_index != event.option_list.highlighted
        if not stale and event.option.id and event.option.id != self.group:
            self.group = event.option.id

    async def select_group(self, group: str) -> None:
        """Highlight `group` in the list and show its form."""
        groups = self.query_one("#editor-groups", OptionList)
        groups.highlighted = groups.get_option_index(group)
        if self.group != group:
            await self.show_group(group)

    async def on_field_row_changed(self, event: FieldRow.Changed) -> None:
        field = event.field
        try:
            if event.value is DEFAULT:
                if self.doc.get(field.group, field.key) is None:
                    self._schedule_validation()
                    return
                self.doc.remove(field.group, field.key)
            else:
                self.doc.set(field.group, field.key, event.value)
        except TuitrainError as exc:
            event.row.set_error(str(exc))
            return
        self.dirty = True
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

    def on_field_row_typo_changed(self, event: FieldRow.TypoChanged) -> None:
        self._show_status()
        self._update_derived()

    def _schedule_validation(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(VALIDATE_DELAY_S, self.validate)

    # Validation, derived values, chart ----------------------------------

    def typos(self) -> list[FieldRow]:
        """Rows whose text does not parse (their value in the file is not what is shown)."""
        return [row for row in self.query_one(GroupForm).all_rows() if row.typo]

    def error_count(self) -> int:
        """Fields with text that does not parse, plus the preset's errors."""
        return len(self.typos()) + len(self.errors)

    def validate(self) -> None:
        """Validate the edited text; update field errors, derived values and the chart."""
        from tuitrain.config import PresetErrors, load_preset_text

        if self._timer is not None:
            self._timer.stop()
        self._timer = None
        try:
            self.preset = load_preset_text(self.doc.text(), str(self.path))
            self.problems = list(getattr(self.preset, "notices", []))
        except PresetErrors as exc:
            self.preset = None
            self.problems = list(exc.problems)
        except TuitrainError as exc:
            self.preset = None
            self.problems = [exc]
        self._add_plan_problem()
        self.errors = [p for p in self.problems if getattr(p, "severity", "error") == "error"]
        self._show_problems()
        self._show_status()
        self._update_derived()

    def _add_plan_problem(self) -> None:
        """A warmup as long as an epoch-based run (the validator's notice covers max_steps runs)."""
        from tuitrain.config import Problem
        from tuitrain.config.problems import NOTICE
        from tuitrain.config.rules import warmup_problem, warmup_suggestion

        if self.preset is None or (getattr(self.preset.args, "max_steps", -1) or -1) > 0:
            return
        try:
            plan = derived_values(self.preset).get("_plan")
        except TuitrainError:
            return
        problem = plan and warmup_problem(plan.warmup_steps, plan.total_steps)
        if problem:
            key = "warmup_steps" if self.preset.args.warmup_steps else "warmup_ratio"
            self.problems.append(Problem(str(self.path), 0, f"optimizer.{key}", problem,
                                         warmup_suggestion(key, plan.total_steps), NOTICE))

    def _show_status(self) -> None:
        status = self.query_one("#editor-status", Static)
        typos = self.typos()
        count = len(typos) + len(self.errors)
        status.set_class(bool(count), "-error")
        if count:
            lines = [f"{row.field_name}: {row.typo}" for row in typos]
            lines += [escape_controls(str(e), tab=" ") for e in self.errors]
            head = f"{glyph(self.app, 'invalid')} {count} error{'s' if count != 1 else ''} · f8 goes to the next · " \
                   "saving and launching wait until they are fixed"
            shown = lines[:2]
            status.update("\n".join([head, *shown]) + (f"\n… {len(lines) - 2} more" if len(lines) > 2 else ""))
        else:
            notes = [escape_controls(str(p), tab=" ") for p in self.problems][:2]
            status.update(f"{glyph(self.app, 'valid')} valid" + ("" if not notes else " · " + " · ".join(notes)))

    def _show_problems(self) -> None:
        by_field: dict[str, str] = {}
        for problem in self.errors:
            name = getattr(problem, "field", "") or ""
            if name:
                msg = problem.message + (f" ({problem.suggestion})" if problem.suggestion else "")
                by_field.setdefault(name, msg)
        for name, row in self.query_one(GroupForm).rows().items():
            row.set_error(by_field.get(name) or by_field.get(row.field.key))

    def _update_derived(self) -> None:
        panel = self.query_one("#derived", Static)
        chart = self.query_one(LRChart)
        count = self.error_count()
        if count:
            text = f"invalid: {count} error{'s' if count != 1 else ''} (f8)"
            panel.update(text if self.compact_derived else f"Derived values: {text}")
            chart.set_message(f"LR schedule: the preset is invalid ({count} error{'s' if count != 1 else ''}; f8)")
            return
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

    def _refuse_if_invalid(self, what: str) -> bool:
        """Validate now (an edit may be waiting for its delay); True, with a notice, when invalid."""
        if self._timer is not None:
            self.validate()
        count = self.error_count()
        if count:
            self.notify(f"{count} error{'s' if count != 1 else ''}: fix {'it' if count == 1 else 'them'} "
                        f"before {what} (f8 goes to the next). Nothing was written.", severity="error")
            return True
        return False

    def action_save(self) -> bool:
        """Save in place (a shipped preset asks for a new path; a run's record, what to do)."""
        if self._refuse_if_invalid("saving"):
            return False
        if self.read_only:
            self._save_record()
            return False
        if self._is_shipped(self.path):
            self.action_save_as()
            return False
        return self._save_to(self.path)

    def _save_to(self, path: Path) -> bool:
        if run_record_of(path) is not None:
            self.notify(escape_controls(f"{path} is a run's record; save as another file"), severity="error",
                        markup=False)
            return False
        try:
            self.doc.save(path)
        except (TuitrainError, OSError) as exc:
            self.notify(escape_controls(f"Cannot save {path}: {exc}"), severity="error", markup=False)
            return False
        self.path = path
        self.record_of = None
        self.dirty = False
        self._set_subtitle()
        self.notify(escape_controls(f"Saved {path}"), markup=False)
        return True

    def record_save_handlers(self) -> dict:
        """What each choice of the save dialog of a run's record does (see `SAVE_CHOICES`)."""
        return {"new-preset": self.action_save_as, "fork": self.fork_record}

    def fork_record(self, then=None) -> None:
        """Fork the run whose record this is, from its latest checkpoint, with the edited
        settings; the fork's dashboard opens (`then`, a launch dialog, is not needed)."""
        self.notify(escape_controls(f"Forking {self.record_of.name} with these settings…"), markup=False)
        self._fork(self.record_of, self.doc.text())

    @work(thread=True, exclusive=True, group="editor-fork")
    def _fork(self, run_dir: Path, text: str) -> None:
        from tuitrain.runs.fork import fork

        try:
            info = fork(run_dir, preset_text=text)
        except TuitrainError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error", markup=False)
            return
        self.app.call_from_thread(self._forked, info)

    def _forked(self, info) -> None:
        self.dirty = False  # the edits are the fork's preset now; the record is as it was
        self.app.post_message(RunLaunched(info, open_dashboard=True))

    def _save_record(self, then=None) -> None:
        from tuitrain.ui.dialogs.savechoice import SAVE_CHOICES, SaveChoiceScreen

        def chosen(choice: str | None) -> None:
            handler = self.record_save_handlers().get(choice)
            if handler is not None:
                handler(then)

        name = self.record_of.name if self.record_of else ""
        self.app.push_screen(SaveChoiceScreen(f"{name}'s preset is the record of that run",
                                              "It stays as the run trained with it.", SAVE_CHOICES), chosen)

    def action_save_as(self, then=None) -> None:
        if then is None and self._refuse_if_invalid("saving"):
            return
        from tuitrain.ui.dialogs.saveas import SaveAsScreen

        if self.read_only:
            suggestion = Path.cwd() / f"{self.record_of.name}.toml"
        elif self._is_shipped(self.path):
            suggestion = Path.cwd() / self.path.name
        else:
            suggestion = self.path

        def chosen(path: Path | None) -> None:
            if path is not None and self._save_to(path) and then is not None:
                then()

        self.app.push_screen(SaveAsScreen(suggestion), chosen)

    def action_launch(self) -> None:
        """Save if needed, then open the launch dialog for this preset (its dashboard follows)."""
        if self._refuse_if_invalid("launching") or self.preset is None:
            return
        self._saved_then(lambda: self.app.post_message(NewRun(preset_path=self.path, open_dashboard=True)))

    def _saved_then(self, then) -> None:
        """Call `then` once the preset on disk is the one on screen (a record or a shipped
        preset is saved as a new file first)."""
        if self.read_only:
            self._save_record(then=then)
            return
        if self.dirty:
            if self._is_shipped(self.path):
                self.action_save_as(then=then)
                return
            if not self._save_to(self.path):
                return
        then()

    def action_sweep(self) -> None:
        """Save if needed, then open the sweep dialog on this preset, the focused field its
        first axis; a launched sweep's screen follows."""
        if self._refuse_if_invalid("sweeping") or self.preset is None:
            return
        focused = self.focused
        row = next((a for a in ([focused] + list(focused.ancestors) if focused else []) if isinstance(a, FieldRow)),
                   None)
        first_key = row.field_name if row is not None else ""

        def open_dialog() -> None:
            from tuitrain.ui.dialogs.sweep import SweepDialog

            def launched(sweep_dir: Path | None) -> None:
                if sweep_dir is not None:
                    self.notify(escape_controls(f"Launched the sweep {sweep_dir.name}"), markup=False)
                    self.app.post_message(OpenSweep(sweep_dir))

            preset = self.preset
            self.app.push_screen(SweepDialog(self.path, task_name=preset.task.name if preset else None,
                                             first_key=first_key, preset_sweep=getattr(preset, "sweep", None),
                                             runs_root=getattr(self.app, "runs_root", None)), launched)

        self._saved_then(open_dialog)

    async def action_next_error(self) -> None:
        """Show and focus the next field with an error (after the focused one, wrapping)."""
        from tuitrain.config import schema

        names = [row.field_name for row in self.typos()]
        names += [p.field for p in self.errors if getattr(p, "field", "")]
        order = {name: i for i, name in enumerate(schema.FIELDS)}
        targets = sorted(dict.fromkeys(n for n in names), key=lambda n: (order.get(n, len(order)), n))
        if not targets:
            self.notify("No errors." if not self.errors else "The errors are not at a field: see the status line.")
            return
        focused = self.focused
        current = next((a.field_name for a in ([focused] + list(focused.ancestors) if focused else [])
                        if isinstance(a, FieldRow)), None)
        later = [t for t in targets if current is None or order.get(t, 0) > order.get(current, -1)]
        target = (later or targets)[0]
        group = target.split(".")[0]
        if group in {g.key for g in schema.GROUPS}:
            await self.select_group(group)
        row = self.query_one(GroupForm).rows().get(target)
        if row is None:
            self.notify(f"{target}: see the status line", markup=False)
            return
        controls = list(row.query(Input)) or list(row.query(Select))
        if controls:
            controls[0].focus()
        row.scroll_visible(animate=False)

    def action_focus_groups(self) -> None:
        self.query_one("#editor-groups", OptionList).focus()

    def action_back(self) -> None:
        if self.dirty:
            from tuitrain.ui.dialogs.confirm import ConfirmScreen

            def answered(ok: bool | None) -> None:
                if ok:
                    self.app.pop_screen()

            self.app.push_screen(ConfirmScreen("Discard unsaved changes?", escape_controls(str(self.path)), "Discard"),
                                 answered)
            return
        self.app.pop_screen()
