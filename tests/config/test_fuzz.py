"""Any TOML text or override gives a Preset or PresetErrors, never another exception."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings, strategies as st

from tuitrain.config import PresetErrors, load_preset_text, schema
from tuitrain.config.writer import toml_key, toml_value

KEYS = list(schema.all_keys()) + list(schema.ALIASES) + ["bogus", "train_batch_size", "name", "options"]
TABLES = list(schema.GROUP_KEYS) + ["task.options", "launch.env", "nope"]
scalars = st.one_of(
    st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["steps", "epoch", "no", "best", "cosine", "polynomial", "gpu", "torchrun",
                     "galore_adamw_layerwise", "cosine_with_min_lr", "reduce_lr_on_plateau", "modular",
                     "x.y:f", "none"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3),
                   st.dictionaries(st.sampled_from(["min_lr", "lr_end", "a b", "num_cycles"]), scalars, max_size=2))


def _render(tables: dict) -> str:
    out = []
    for table, items in tables.items():
        out.append(f"[{table}]")
        out += [f"{toml_key(k)} = {toml_value(v)}" for k, v in items.items()]
    return "\n".join(out) + "\n"


def _check(text: str, overrides=()) -> None:
    try:
        p = load_preset_text(text, "f.toml", overrides)
    except PresetErrors as exc:
        assert exc.one_line()
        for problem in exc.problems:
            assert str(problem).startswith(("f.toml", "--set "))
        return
    for v in p.args.as_dict().values():
        assert not (isinstance(v, float) and not math.isfinite(v))
    load_preset_text(p.to_toml(), "again.toml")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(TABLES), st.dictionaries(st.sampled_from(KEYS), values, max_size=4), max_size=4))
def test_random_presets_never_crash(tables: dict) -> None:
    _check(_render(tables))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_random_text_never_crashes(text: str) -> None:
    _check(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEYS + ["core.max_steps", "task.options.block_size", "x.y.z"]),
                          st.text(max_size=10)), max_size=3))
def test_random_overrides_never_crash(pairs) -> None:
    _check("", [f"{k}={v}" for k, v in pairs])
