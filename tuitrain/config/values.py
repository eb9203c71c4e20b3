"""Checking one value against its field: type, choices, range, NaN/inf."""

from __future__ import annotations

import math
from typing import Any

from tuitrain.config.schema import BOOL, FLOAT, INT, INT_OR_STR, STR, STR_LIST, TABLE, Field
from tuitrain.textfmt import closest  # noqa: F401 - config's callers import it from here

_TYPE_WORDS = {
    BOOL: "a boolean (true or false)",
    INT: "an integer",
    FLOAT: "a number",
    STR: "a string",
    STR_LIST: "a list of strings",
    TABLE: "a table",
    INT_OR_STR: "an integer or a string",
}


class BadValue(Exception):
    """A value that does not fit its field: `message` and a `suggestion`."""

    def __init__(self, message: str, suggestion: str = ""):
        super().__init__(message)
        self.message = message
        self.suggestion = suggestion


def describe(value: Any) -> str:
    """A value as a user wrote it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value) if len(value) < 60 else repr(value[:57] + "...")
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _choice(f: Field, value: str) -> str:
    if f.choices and value not in f.choices:
        near = closest(value, f.choices)
        hint = f"did you mean {near!r}?" if near else "one of: " + ", ".join(f.choices)
        raise BadValue(f"{describe(value)} is not one of its choices", hint)
    return value


def _range(f: Field, value: float) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise BadValue(f"{value} is not allowed", "give a finite number")
    lo, hi = f.minimum, f.maximum
    if lo is not None and (value < lo or (f.exclusive_minimum and value == lo)):
        op = ">" if f.exclusive_minimum else ">="
        raise BadValue(f"{describe(value)} is out of range", f"must be {op} {lo:g}")
    if hi is not None and (value > hi or (f.exclusive_maximum and value == hi)):
        op = "<" if f.exclusive_maximum else "<="
        raise BadValue(f"{describe(value)} is out of range", f"must be {op} {hi:g}")


def _check_table(value: dict, path: str = "") -> None:
    for k, v in value.items():
        if isinstance(v, float) and not math.isfinite(v):
            raise BadValue(f"{path}{k} = {v} is not allowed", "give a finite number")
        if isinstance(v, dict):
            _check_table(v, f"{path}{k}.")


def check_value(f: Field, value: Any) -> Any:
    """`value` normalised for `f` (a lone string for a list is wrapped); raises `BadValue`."""
    if value is None:
        if f.nullable:
            return None
        raise BadValue("cannot be unset", f"give {_TYPE_WORDS[f.type]}")
    t = f.type
    if f.nullable and isinstance(value, str) and value.lower() in ("none", "null") and t != STR:
        return None
    wrong = BadValue(f"expected {_TYPE_WORDS[t]}, got {describe(value)}", _type_hint(f, value))
    if t == BOOL:
        if not isinstance(value, bool):
            raise wrong
        return value
    if t == INT:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong
        _range(f, value)
        return value
    if t == FLOAT:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong
        _range(f, value)
        return value
    if t == STR:
        if isinstance(value, bool) and "bool_as" in f.extra:  # e.g. resume_from_checkpoint = true
            return f.extra["bool_as"][value]
        if not isinstance(value, str):
            raise wrong
        return _choice(f, value)
    if t == STR_LIST:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong
        return [_choice(f, v) for v in value]
    if t == TABLE:
        if not isinstance(value, dict):
            raise wrong
        _check_table(value)
        return dict(value)
    if t == INT_OR_STR:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise wrong
        if isinstance(value, int):
            _range(f, value)
            return value
        return _choice(f, value)
    raise AssertionError(f"unknown field type {t!r}")  # a schema bug, not a user mistake


def _type_hint(f: Field, value: Any) -> str:
    if f.type == BOOL and isinstance(value, str) and value.lower() in ("true", "false"):
        return f"write {value.lower()} without quotes"
    if f.type in (INT, FLOAT) and isinstance(value, str) and _is_number(value):
        return "write the number without quotes"
    if f.type == INT and isinstance(value, float) and value.is_integer():
        return f"write {int(value)}"
    if f.type == BOOL and isinstance(value, int):
        return "write true or false"
    if f.type == TABLE:
        return f"write a [{f.group}.{f.key}] table or {f.key} = {{ name = value }}"
    return f"e.g. {f.key} = {_example(f)}"


def _example(f: Field) -> str:
    value = f.example if f.default is None else f.default
    from tuitrain.config.writer import toml_value

    return toml_value(value) if value is not None else "..."


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
