"""`TrainingArgs`: the typed, frozen arguments the engine reads, generated from the schema.

One attribute per field of the eight HF groups of `schema.FIELDS` (every one present, with
the schema's default and a Python type derived from the field's type), frozen so nothing
downstream can change a run's settings behind the preset's back: a changed copy is
`args.replace(key=value)`. Reading a name the schema does not define raises
`AttributeError` (the class has `__slots__`), and `tests/engine/test_typed_args.py` fails
on any engine code that reads one or falls back to a per-call default.

`Preset.args` is one of these, resolved by `rules.resolve` (aliases folded, HF's
post-init defaults filled).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from tuitrain.config import schema

_PYTHON_TYPES: dict[str, Any] = {
    schema.BOOL: bool, schema.INT: int, schema.FLOAT: float, schema.STR: str,
    schema.STR_LIST: list, schema.TABLE: dict, schema.INT_OR_STR: int | str,
}

# The fields `TrainingArgs` holds: TrainingArguments' themes (not [task] or [launch]).
ARG_FIELDS: tuple[schema.Field, ...] = tuple(f for f in schema.FIELDS.values() if f.group in schema.HF_GROUPS)


def python_type(f: schema.Field) -> Any:
    """The Python type of a field's values (`T | None` when the field may be null)."""
    base = _PYTHON_TYPES[f.type]
    return base | None if f.nullable or f.default is None else base


def _spec(f: schema.Field) -> tuple[str, Any, Any]:
    default = f.default
    if isinstance(default, (list, dict)):  # a fresh copy per instance, never a shared one
        return f.key, python_type(f), dataclasses.field(default_factory=lambda d=default: type(d)(d))
    return f.key, python_type(f), dataclasses.field(default=default)


def _replace(self, **changes: Any):
    """A copy with `changes` applied (the object itself never changes)."""
    return dataclasses.replace(self, **changes)


def _as_dict(self) -> dict[str, Any]:
    """`{key: value}` of every field."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


TrainingArgs = dataclasses.make_dataclass(
    "TrainingArgs",
    [_spec(f) for f in ARG_FIELDS],
    frozen=True,
    slots=True,
    namespace={"replace": _replace, "as_dict": _as_dict,
               "__doc__": "The resolved TrainingArguments of a preset, one typed attribute per schema field."},
)
TrainingArgs.__module__ = __name__  # make_dataclass takes `module=` only from Python 3.12

ARG_NAMES: frozenset[str] = frozenset(f.key for f in ARG_FIELDS)
