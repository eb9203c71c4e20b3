"""The engine reads the typed, frozen arguments, and only names the schema defines.

Every `args.NAME` / `self.args.NAME` / `preset.args.NAME` read in `tuitrain/engine` (and in
the step and schedule arithmetic it shares with the UI) must be a field of `TrainingArgs`
(or one of its methods), and no code may fall back to a per-call default with
`getattr(args, "name", default)`: the schema's default is the only default.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from tuitrain.config import FIELDS, TrainingArgs, schema
from tuitrain.config.args import ARG_NAMES

ROOT = Path(__file__).resolve().parents[2] / "tuitrain"
SOURCES = sorted((ROOT / "engine").rglob("*.py")) + [ROOT / "config" / "steps.py", ROOT / "config" / "schedules.py"]
METHODS = {"replace", "as_dict"}


def _is_args(node: ast.AST) -> bool:
    """`args`, `self.args`, `trainer.args` or `preset.args` (also `self.preset.args`)."""
    if isinstance(node, ast.Name):
        return node.id == "args"
    return isinstance(node, ast.Attribute) and node.attr == "args"


def reads(path: Path) -> list[tuple[int, str, str]]:
    """`(line, how, name)` for every argument read in a source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and _is_args(node.value):
            found.append((node.lineno, "attribute", node.attr))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and node.args and _is_args(node.args[0])):
            name = node.args[1].value if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) else "?"
            found.append((node.lineno, "getattr-default" if len(node.args) > 2 else "getattr", str(name)))
    return found


def test_the_engine_reads_only_schema_fields_without_per_call_defaults():
    bad = []
    for path in SOURCES:
        for line, how, name in reads(path):
            where = f"{path.relative_to(ROOT.parent)}:{line}"
            if how != "attribute":
                bad.append(f"{where}: {how} of {name!r} (read args.{name}; the schema holds its default)")
            elif name not in ARG_NAMES and name not in METHODS:
                bad.append(f"{where}: args.{name} is not a field of the schema")
    assert not bad, "\n".join(bad)


def test_the_check_catches_an_unknown_name_and_a_default(tmp_path):
    source = tmp_path / "bad.py"
    source.write_text("def f(self, args):\n    return args.preset_path, getattr(self.args, 'seed', 1)\n")
    assert reads(source) == [(2, "attribute", "preset_path"), (2, "getattr-default", "seed")]
    assert "preset_path" not in ARG_NAMES


def test_every_schema_field_is_a_typed_frozen_attribute():
    hf_fields = [f for f in FIELDS.values() if f.group in schema.HF_GROUPS]
    names = [f.name for f in dataclasses.fields(TrainingArgs)]
    assert names == [f.key for f in hf_fields]
    args = TrainingArgs()
    for f in hf_fields:
        assert getattr(args, f.key) == f.default, f.key
    assert TrainingArgs.__annotations__["seed"] is int
    assert TrainingArgs.__annotations__["eval_steps"] == float | None
    with pytest.raises(dataclasses.FrozenInstanceError):
        args.seed = 1
    with pytest.raises(AttributeError):
        args.preset_path  # noqa: B018 - reading a name the schema does not define fails
    assert args.replace(seed=7).seed == 7 and args.seed == 42
