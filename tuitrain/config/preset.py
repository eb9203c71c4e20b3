"""Loading a preset: TOML text → checked, resolved `Preset`, or `PresetErrors` with every problem."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field as dc_field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tuitrain.config import schema
from tuitrain.config.args import TrainingArgs
from tuitrain.config.limits import MAX_STRING_CHARS, check_text, long_strings, read_preset_file
from tuitrain.config.locate import LineIndex
from tuitrain.config.problems import ERROR, NOTICE, PresetErrors, Problem
from tuitrain.config.tasks import BUILTIN_TASKS, is_entry_point
from tuitrain.config.values import BadValue, check_value, closest, describe


@dataclass(frozen=True)
class TaskSpec:
    """What to train: a task name and its options (a built-in task's filled with defaults)."""

    name: str
    options: dict


@dataclass
class Preset:
    """A checked, resolved preset."""

    path: str
    args: TrainingArgs
    task: TaskSpec
    launch: SimpleNamespace
    notices: list[Problem] = dc_field(default_factory=list)
    given: frozenset = frozenset()
    # The preset's `[sweep]` table, checked (`config.sweep_table.read_sweep_table`), or None.
    # `tuitrain run` trains the preset as written; `tuitrain sweep` expands it.
    sweep: dict | None = None

    def values(self) -> dict[str, Any]:
        """`{"group.key": value}` of every field, plus `task.options.KEY` entries."""
        out: dict[str, Any] = {}
        for name, f in schema.FIELDS.items():
            if f.group == "task":
                out[name] = getattr(self.task, f.key)
            elif f.group == "launch":
                out[name] = getattr(self.launch, f.key)
            else:
                out[name] = getattr(self.args, f.key)
        for k, v in self.task.options.items():
            out[f"task.options.{k}"] = v
        return out

    def to_toml(self) -> str:
        """The full resolved preset as TOML; loading it gives the same `Preset`."""
        from tuitrain.config.writer import preset_toml

        header = f"# Resolved from {self.path} by tuitrain.\n"
        return preset_toml(self.values(), self.task.options, header)


class _Collector:
    """Problems of one load, each located by file and line."""

    def __init__(self, label: str, index: LineIndex):
        self.label, self.index = label, index
        self.items: list[Problem] = []
        self.override_lines: dict[tuple, str] = {}

    def add(self, path: tuple, message: str, suggestion: str = "", severity: str = ERROR,
            name: str | None = None) -> None:
        where = self.override_lines.get(tuple(path[:2])) or self.override_lines.get(tuple(path))
        if where:
            file, line = where, 0
        else:
            file, line = self.label, self.index.line(*path)
        self.items.append(Problem(file, line, name or ".".join(path), message, suggestion, severity))

    def errors(self) -> list[Problem]:
        return [p for p in self.items if p.severity == ERROR]

    def notices(self) -> list[Problem]:
        return [p for p in self.items if p.severity == NOTICE]


def _syntax_error(label: str, exc: tomllib.TOMLDecodeError) -> PresetErrors:
    msg = str(exc)
    line = getattr(exc, "lineno", None)
    col = getattr(exc, "colno", None)
    # tomllib says "... (at line 3, column 7)"; move the location to the front.
    if " (at line " in msg:
        msg, _, where = msg.rpartition(" (at ")
        parts = where.rstrip(")").replace(",", "").split()
        if line is None and "line" in parts:
            line = int(parts[parts.index("line") + 1])
        if col is None and "column" in parts:
            col = int(parts[parts.index("column") + 1])
    elif msg.endswith(" (at end of document)"):
        msg = msg[: -len(" (at end of document)")] + " at the end of the file"
    hint = f"column {col}" if col else ""
    return PresetErrors([Problem(label, line or 0, "", f"TOML syntax error: {msg[:1].lower() + msg[1:]}", hint)])


def parse_override(text: str) -> tuple[str, str, Any]:
    """`group.key=value` or `key=value` → (group or "", key, value); value parsed as TOML."""
    if "=" not in text:
        raise PresetErrors([Problem(f"--set {text}", 0, "", "expected KEY=VALUE", "e.g. --set core.max_steps=100")])
    name, _, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word: a string
    if name.startswith("task.options."):
        return "task.options", name[len("task.options."):], value
    if name.startswith("launch.env."):
        return "launch.env", name[len("launch.env."):], value
    group, _, key = name.rpartition(".")
    return group, key, value


def _apply_overrides(data: dict, overrides: tuple[str, ...] | list[str], col: _Collector) -> None:
    for text in overrides:
        group, key, value = parse_override(text)
        if not group:
            try:
                group = schema.field(key).group
            except KeyError:
                near = closest(key, schema.all_keys() + list(schema.ALIASES))
                col.items.append(Problem(f"--set {text}", 0, key, "unknown setting",
                                         f"did you mean {near!r}?" if near else "see `tuitrain preset new`"))
                continue
        alias = schema.ALIASES.get(key)
        if alias is not None and alias.group == group:
            key = alias.key  # an override replaces the file's value under either name
        target = data
        for part in group.split("."):
            node = target.setdefault(part, {})
            if not isinstance(node, dict):
                node = target[part] = {}
            target = node
        known = schema.FIELDS.get(f"{group}.{key}")
        for other in known.aliases if known else ():
            target.pop(other, None)
        target[key] = value
        col.override_lines[tuple(group.split(".")) + (key,)] = f"--set {text}"


def load_preset_text(text: str, path_label: str = "<preset>", overrides=()) -> Preset:
    """A `Preset` from TOML text; raises `PresetErrors` listing every problem."""
    check_text(text, path_label)  # size and nesting bounds, before a recursive parser sees it
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path_label, exc) from None
    return load_preset_data(data, path_label, overrides, text)


def load_preset_data(data: dict, path_label: str = "<preset>", overrides=(), text: str = "") -> Preset:
    """A `Preset` from parsed tables (`{"core": {...}, "task": {...}}`, as `tomllib` gives
    them), checked and resolved exactly as a file is; raises `PresetErrors`."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in data.items()}
    col = _Collector(path_label, LineIndex(text))
    for path, length in long_strings(data):
        col.add(path, f"a string of {length} characters (at most {MAX_STRING_CHARS})",
                "keep long text in a file and give its path")
    _apply_overrides(data, tuple(overrides), col)
    from tuitrain.config.rules import resolve

    preset = resolve(data, col, path_label)
    if "sweep" in data:
        preset.sweep = _check_sweep(data["sweep"], col)
    errors = col.errors()
    if errors:
        raise PresetErrors(errors)
    preset.notices = col.notices()
    return preset


def _check_sweep(table: Any, col: _Collector) -> dict:
    from tuitrain.config.sweep_table import read_sweep_table

    def report(path: tuple, message: str, suggestion: str, name: str) -> None:
        col.add(path, message, suggestion, name=name)

    return read_sweep_table(table, report)


def load_preset(path, overrides=()) -> Preset:
    """A `Preset` from a file; `overrides` are `group.key=value` strings."""
    p = Path(path)
    text = read_preset_file(path)
    preset = load_preset_text(text, str(path), overrides)
    preset_dir = p.resolve().parent
    preset.task = _anchor_relative_paths(preset.task, preset_dir)
    generation = preset.args.generation_config
    if isinstance(generation, str):
        preset.args = preset.args.replace(generation_config=_anchored(generation, preset_dir))
    source = preset.args.resume_from_checkpoint
    if isinstance(source, str) and source != "last":
        preset.args = preset.args.replace(resume_from_checkpoint=_anchored(source, preset_dir))
    return preset


# Settings that name files; a relative one is tried from the working directory, then
# beside the preset, and frozen as an absolute path so a run's copy of the preset (in its
# own directory, started from anywhere) still finds it.
_PATH_OPTIONS = ("text", "data_dir")


def _anchored(value: str, preset_dir: Path) -> str:
    path = Path(value).expanduser()
    if not value or path.is_absolute():
        return value
    for candidate in (path, preset_dir / path):
        if candidate.exists():
            return str(candidate.resolve())
    return value


def _anchor_relative_paths(task: TaskSpec, preset_dir: Path) -> TaskSpec:
    def anchored(value: str) -> str:
        return _anchored(value, preset_dir)

    name, options = task.name, dict(task.options)
    target, sep, func = name.rpartition(":")
    if sep and (target.endswith(".py") or "/" in target):
        name = f"{anchored(target)}:{func}"
    for key in _PATH_OPTIONS:
        if isinstance(options.get(key), str):
            options[key] = anchored(options[key])
    return TaskSpec(name, options)


def _check_fields(group: str, table: Any, col: _Collector, out: dict[str, Any], given: set) -> None:
    """Check one HF/launch group's table into `out` (`{"group.key": value}`)."""
    if not isinstance(table, dict):
        col.add((group,), f"expected a [{group}] table, got {describe(table)}",
                f"write [{group}] on its own line, then key = value lines")
        return
    known = {f.key: f for f in schema.group_fields(group)}
    for key, value in table.items():
        f = known.get(key)
        path = (group, key)
        if f is None and key in schema.ALIASES:
            f = schema.ALIASES[key]
            if f.group != group:
                col.add(path, f"belongs in [{f.group}], not [{group}]", f"move it to [{f.group}]")
                continue
            if f.key in table:
                col.add(path, f"both {key} and {f.key} are set", f"remove the alias {key}")
                continue
            col.add(path, f"is an alias of {f.key}; loaded as {f.key}", f"rename it to {f.key}",
                    NOTICE, name=f"{group}.{key}")
        if f is None:
            _unknown_key(group, key, col)
            continue
        try:
            out[f.name] = check_value(f, value)
            given.add(f.name)
        except BadValue as bad:
            col.add(path, bad.message, bad.suggestion)


def _unknown_key(group: str, key: str, col: _Collector) -> None:
    path = (group, key)
    if key in schema.READ_ONLY:
        col.add(path, f"cannot be set: it {schema.READ_ONLY[key]}")
        return
    try:
        other = schema.field(key)
    except KeyError:
        other = None
    if other is not None and other.group != group:
        where = f"[{other.group}]" if other.group != "task" else "[task]"
        col.add(path, f"belongs in {where}, not [{group}]", f"move it to {where}")
        return
    if any(key in info.options for info in BUILTIN_TASKS.values()):
        col.add(path, f"is a task option, not a key of [{group}]", "move it under [task.options]")
        return
    near = closest(key, [f.key for f in schema.group_fields(group)]) or closest(key, schema.all_keys())
    if near:
        g = schema.field(near).group
        hint = f"did you mean {near!r}?" if g == group else f"did you mean {near!r} in [{g}]?"
    else:
        hint = f"`tuitrain preset new` lists every key of [{group}]"
    col.add(path, f"unknown key in [{group}]", hint)


def check_structure(data: dict, col: _Collector) -> tuple[dict[str, Any], set, Any, Any]:
    """Top-level tables and per-field values: `(values, given, task_table, env)`."""
    values: dict[str, Any] = {}
    given: set = set()
    for top, table in data.items():
        if top in schema.GROUP_KEYS or top == "sweep":  # [sweep]: checked by load_preset_data
            continue
        if isinstance(table, dict) or top not in schema.all_keys() and top not in schema.ALIASES:
            near = closest(top, list(schema.GROUP_KEYS))
            col.add((top,), f"unknown table [{top}]",
                    f"did you mean [{near}]?" if near else "tables: " + ", ".join(schema.GROUP_KEYS))
        else:
            f = schema.field(top)
            col.add((top,), f"must sit inside [{f.group}]", f"move it under a [{f.group}] header")
    for group in schema.GROUP_KEYS:
        if group in data and group != "task":
            _check_fields(group, data[group], col, values, given)
    return values, given, data.get("task", {}), None


def check_task(table: Any, col: _Collector) -> TaskSpec:
    """The [task] table: name and options (validated for built-in tasks)."""
    if not isinstance(table, dict):
        col.add(("task",), f"expected a [task] table, got {describe(table)}")
        return TaskSpec("char_gpt", BUILTIN_TASKS["char_gpt"].defaults())
    name = table.get("name", "char_gpt")
    for key in table:
        if key not in ("name", "options"):
            if key in BUILTIN_TASKS.get(name if isinstance(name, str) else "", BUILTIN_TASKS["char_gpt"]).options:
                col.add(("task", key), "is a task option", "move it under [task.options]")
            else:
                _unknown_key("task", key, col)
    if not isinstance(name, str) or not name:
        col.add(("task", "name"), f"expected a task name, got {describe(name)}",
                "one of " + ", ".join(BUILTIN_TASKS) + " or package.module:function")
        name = "char_gpt"
    options = table.get("options", {})
    if not isinstance(options, dict):
        col.add(("task", "options"), f"expected a table, got {describe(options)}",
                "write a [task.options] table")
        options = {}
    info = BUILTIN_TASKS.get(name)
    if info is None:
        if not is_entry_point(name):
            near = closest(name, list(BUILTIN_TASKS))
            col.add(("task", "name"), f"unknown task {name!r}",
                    f"did you mean {near!r}?" if near else
                    "built-in: " + ", ".join(BUILTIN_TASKS) + "; or package.module:function / path/file.py:function")
        return TaskSpec(name, dict(options))
    resolved = info.defaults()
    for key, value in options.items():
        f = info.options.get(key)
        if f is None:
            near = closest(key, list(info.options))
            col.add(("task", "options", key), f"unknown option of task {name!r}",
                    f"did you mean {near!r}?" if near else "options: " + ", ".join(info.options))
            continue
        try:
            resolved[key] = check_value(f, value)
        except BadValue as bad:
            col.add(("task", "options", key), bad.message, bad.suggestion)
    return TaskSpec(name, resolved)
