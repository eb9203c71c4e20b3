"""Writing presets as TOML with the stdlib only: values, resolved presets, and new presets."""

from __future__ import annotations

import json
import math
import re
import textwrap
from typing import Any

from tuitrain.config import schema
from tuitrain.config.tasks import BUILTIN_TASKS

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def toml_key(key: str) -> str:
    """A key, quoted when it is not a bare key."""
    return key if _BARE.match(key) else toml_string(key)


def toml_string(text: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML escapes; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """One value as inline TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        items = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + items + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def preset_toml(values: dict[str, Any], task_options: dict[str, Any], header: str = "") -> str:
    """A preset with the given `{"group.key": value}` (None values are left out)."""
    out: list[str] = [header] if header else []
    for group in schema.GROUPS:
        lines = [f"{toml_key(f.key)} = {toml_value(values[f.name])}"
                 for f in schema.group_fields(group.key)
                 if f.name in values and values[f.name] is not None]
        if group.key == "task":
            out.append("[task]\n" + "\n".join(lines) + "\n")
            out.append("[task.options]\n" + "".join(
                f"{toml_key(k)} = {toml_value(v)}\n" for k, v in task_options.items() if v is not None))
            continue
        out.append(f"[{group.key}]\n" + "".join(line + "\n" for line in lines))
    return "\n".join(out)


def _comment(text: str, width: int = 88) -> list[str]:
    return ["# " + line for line in textwrap.wrap(text, width - 2)]


def _field_block(f: schema.Field) -> list[str]:
    lines = _comment(f.help)
    if not f.honoured:
        lines += _comment(f"Not honoured by tuitrain's engine: {f.honoured_note}.")
    elif f.honoured_note:
        lines += _comment(f"Note: {f.honoured_note}.")
    if f.choices:
        lines += _comment("Choices: " + ", ".join(f.choices) + ".")
    if f.aliases:
        lines += _comment("Also accepted as: " + ", ".join(f.aliases) + ".")
    if f.default is None:
        unset = f.unset or "not set"
        shown = toml_value(f.example) if f.example is not None else '"..."'
        lines.append(f"# {toml_key(f.key)} = {shown}  (unset: {unset})")
    else:
        lines.append(f"{toml_key(f.key)} = {toml_value(f.default)}")
    return lines


def new_preset_text() -> str:
    """A preset with every field at its default, each with its help as a comment.

    Fields whose default is unset (TOML has no null) are written commented out with an
    example value. The text validates as written.
    """
    out = [
        "# A tuitrain preset: one table per group. Every key is optional; a missing key",
        "# takes the default shown here. `tuitrain preset validate FILE` checks it,",
        "# `tuitrain preset show FILE` prints the resolved values and step counts.",
        "",
    ]
    for group in schema.GROUPS:
        out += [f"# ── {group.title} ──", *_comment(group.doc), f"[{group.key}]"]
        for f in schema.group_fields(group.key):
            out += [""] + _field_block(f)
        if group.key == "dataloader":
            out += ["", "# train_batch_size: read-only, " + schema.READ_ONLY["train_batch_size"] + "."]
        if group.key == "task":
            info = BUILTIN_TASKS["char_gpt"]
            out += ["", f"# Options of the task (here: char_gpt, {info.doc})", "[task.options]"]
            for opt in info.options.values():
                out += _field_block(opt)
        out.append("")
    return "\n".join(out)
