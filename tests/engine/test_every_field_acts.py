"""Every field the schema marks honoured changes what the engine does, as transformers' Trainer
does: the events, the checkpoints, the weights, the data order, the output (README,
"Guarantees"). One case per field (`field_cases_*.py`); a new honoured field without a case
fails `test_every_honoured_field_has_a_case`."""

from __future__ import annotations

import pytest

from field_cases_core import CASES as CORE
from field_cases_logging import CASES as LOGGING
from field_cases_system import CASES as SYSTEM
from tuitrain.config import schema

CASES = {**CORE, **LOGGING, **SYSTEM}
HONOURED = sorted(f.name for f in schema.FIELDS.values() if f.honoured)


def test_every_honoured_field_has_a_case():
    missing = sorted(set(HONOURED) - set(CASES))
    stale = sorted(set(CASES) - set(HONOURED))
    assert not missing, f"honoured fields with no behavioural case: {missing}"
    assert not stale, f"cases for fields that are not honoured (or gone): {stale}"


def test_fields_not_honoured_say_so_when_set():
    from tuitrain.config import load_preset_data

    for f in schema.FIELDS.values():
        if f.honoured or f.group in ("task", "launch"):
            continue
        value = {"bool": not f.default, "str": "x", "int": 8}.get(f.type)
        if f.choices:
            value = next(c for c in f.choices if c != f.default)
        try:
            preset = load_preset_data({f.group: {f.key: value}}, "p.toml")
        except Exception as exc:  # refused outright (deepspeed, sharded_ddp …): also saying so
            assert f.key in str(exc), (f.name, exc)
            continue
        assert any(p.field.endswith(f.key) and "not honoured" in p.message for p in preset.notices), f.name


@pytest.mark.parametrize("name", HONOURED)
def test_setting_the_field_changes_what_the_engine_does(name, tmp_path):
    CASES[name](tmp_path)
