"""A sweep's axes and members: grid × zip × samples, names, and every member checked first."""

from __future__ import annotations

import pytest

from tuitrain.config import load_preset_text
from tuitrain.config.problems import PresetErrors
from tuitrain.errors import TuitrainError
from tuitrain.sweeps.expand import expand
from tuitrain.sweeps.spec import SweepSpecError, combine, from_table, parse_cli


def test_grid_times_zip_in_order_with_readable_names(tiny):
    spec = parse_cli(grid=["optimizer.lr_scheduler_type=linear,cosine"],
                     zip=["core.per_device_train_batch_size=8,16", "gradient_accumulation_steps=2,1"])
    members = expand(tiny, spec)
    assert [m.name for m in members] == [
        "lr_scheduler_type=linear,per_device_train_batch_size=8,gradient_accumulation_steps=2",
        "lr_scheduler_type=linear,per_device_train_batch_size=16,gradient_accumulation_steps=1",
        "lr_scheduler_type=cosine,per_device_train_batch_size=8,gradient_accumulation_steps=2",
        "lr_scheduler_type=cosine,per_device_train_batch_size=16,gradient_accumulation_steps=1",
    ]
    last = members[-1]
    assert last.values == {"optimizer.lr_scheduler_type": "cosine", "core.per_device_train_batch_size": 16,
                           "core.gradient_accumulation_steps": 1}
    assert last.preset.args.lr_scheduler_type == "cosine" and last.preset.args.per_device_train_batch_size == 16
    assert last.preset.args.gradient_accumulation_steps == 1


def test_two_grid_axes_make_the_cartesian_product_and_task_options_are_keys(tiny):
    spec = parse_cli(grid=["task.options.hidden=4,8,16", "optimizer.warmup_ratio=0,0.1"], sets=["core.max_steps=3"])
    members = expand(tiny, spec)
    assert len(members) == 6
    assert members[1].name == "hidden=4,warmup_ratio=0.1"
    assert {m.preset.task.options["hidden"] for m in members} == {4, 8, 16}
    assert all(m.preset.args.max_steps == 3 for m in members)


def test_values_are_toml_and_bare_words_strings(tiny):
    spec = parse_cli(grid=['optimizer.lr_scheduler_type="linear",cosine', "precision.bf16=false,true"])
    values = [m.values for m in expand(tiny, spec)]
    assert values[0] == {"optimizer.lr_scheduler_type": "linear", "precision.bf16": False}
    assert values[-1] == {"optimizer.lr_scheduler_type": "cosine", "precision.bf16": True}


@pytest.mark.parametrize("kwargs,message", [
    ({"zip": ["core.per_device_train_batch_size=8,16,32", "core.gradient_accumulation_steps=4,2"]},
     "zipped keys need equal lengths"),
    ({"grid": ["optimizer.lr_schedular_type=linear"]}, "did you mean 'optimizer.lr_scheduler_type'?"),
    ({"grid": ["core.lr_scheduler_type=linear"]}, "belongs in [optimizer]"),
    ({"grid": ["optimizer.learning_rate"]}, "expected GROUP.KEY=VALUES"),
    ({"grid": ["optimizer.learning_rate=0.1", "learning_rate=0.2"]}, "varied twice"),
    ({"grid": ["optimizer.lr_scheduler_type=linear,bogus"]}, "'bogus' is not one of its choices"),
    ({"sample": ["optimizer.learning_rate=loguniform(0,1)"]}, "both ends must be positive"),
    ({"sample": ["optimizer.learning_rate=logunifrom(1e-4,1e-2)"]}, "did you mean loguniform"),
    ({"parallel": "0"}, "--parallel 0: expected a whole number >= 1"),
])
def test_bad_axes_are_refused_in_one_line(kwargs, message):
    with pytest.raises(SweepSpecError) as err:
        parse_cli(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_one_bad_member_refuses_the_sweep_naming_it(tiny):
    """Each value is fine alone; the member pairing reduce_lr_on_plateau with no evaluation is not."""
    spec = parse_cli(grid=["optimizer.warmup_ratio=0.1,0.5", "optimizer.lr_scheduler_type=linear,reduce_lr_on_plateau"])
    with pytest.raises(TuitrainError) as err:
        expand(tiny, spec)
    text = str(err.value)
    assert text.startswith("sweep member warmup_ratio=0.1,lr_scheduler_type=reduce_lr_on_plateau: ")
    assert "optimizer.lr_scheduler_type" in text and "needs an eval strategy" in text and "\n" not in text


def test_samples_are_drawn_reproducibly_and_recorded_in_each_members_preset(tiny):
    spec = parse_cli(sample=["optimizer.learning_rate=loguniform(1e-4,1e-2)", "task.options.hidden=intuniform(2,9)",
                             "optimizer.lr_scheduler_type=choice(linear,cosine)"], count=5, seed=7)
    first, again = expand(tiny, spec), expand(tiny, spec)
    assert [m.values for m in first] == [m.values for m in again]
    for m in first:
        lr = m.values["optimizer.learning_rate"]
        assert 1e-4 <= lr <= 1e-2 and m.preset.args.learning_rate == lr
        assert 2 <= m.values["task.options.hidden"] <= 9
        assert m.preset.values()["task.options.hidden"] == m.values["task.options.hidden"]
        assert load_preset_text(m.preset.to_toml()).args.learning_rate == lr  # the frozen preset holds it
    other = expand(tiny, parse_cli(sample=["optimizer.learning_rate=loguniform(1e-4,1e-2)"], count=5, seed=8))
    assert [m.values["optimizer.learning_rate"] for m in other] != [m.values["optimizer.learning_rate"] for m in first]


def test_count_and_sample_need_each_other(tiny):
    with pytest.raises(TuitrainError, match="give --count N"):
        expand(tiny, parse_cli(sample=["optimizer.learning_rate=uniform(0.1,0.2)"]))
    with pytest.raises(TuitrainError, match="leave --count out"):
        expand(tiny, parse_cli(grid=["optimizer.learning_rate=0.1"], count=3))


SWEEP_TABLE = '''
[sweep]
parallel = 2
count = 2
seed = 3
[sweep.grid]
"optimizer.lr_scheduler_type" = ["linear", "cosine"]
[sweep.sample]
"optimizer.learning_rate" = "loguniform(1e-4, 1e-2)"
'''


def test_the_preset_sweep_table_is_read_and_the_command_line_adds_to_it(tiny):
    text = tiny.read_text() + SWEEP_TABLE
    preset = load_preset_text(text, "p.toml")
    spec = from_table(preset.sweep, "p.toml")
    assert spec.parallel == 2 and spec.count == 2 and spec.seed == 3
    assert spec.grid == {"optimizer.lr_scheduler_type": ["linear", "cosine"]}
    both = combine(spec, parse_cli(grid=["optimizer.warmup_steps=0,2"], parallel="1"))
    assert both.parallel == 1 and list(both.grid) == ["optimizer.lr_scheduler_type", "optimizer.warmup_steps"]
    tiny.write_text(text)
    assert len(expand(tiny, both)) == 8
    with pytest.raises(SweepSpecError, match="varied by the preset's"):
        combine(spec, parse_cli(grid=["optimizer.lr_scheduler_type=constant"]))


@pytest.mark.parametrize("table,line,message", [
    ('[sweep]\nparalel = 2\n', 2, "sweep.paralel: unknown key in [sweep] (did you mean 'parallel'?)"),
    ('[sweep.grid]\n"optimizer.lr_scheduler_type" = ["linear", "bogus"]\n', 2,
     'sweep.grid."optimizer.lr_scheduler_type": optimizer.lr_scheduler_type = \'bogus\''),
    ('[sweep.zip]\n"core.max_steps" = [1, 2]\n"reproducibility.seed" = [1]\n', 1, "zipped keys need equal lengths"),
    ('[sweep.zip]\n"core.seed" = [1]\n', 2, "'seed' belongs in [reproducibility], not [core]"),
    ('[sweep.sample]\n"optimizer.learning_rate" = "uniform(2, 1)"\n', 2, "the low end must be below the high end"),
    ('[sweep]\nparallel = "all"\n', 2, 'expected a whole number >= 1 or "per-gpu"'),
])
def test_a_bad_sweep_table_is_a_located_one_line_error(tiny, table, line, message):
    """The preset loader (so `preset validate` and the editor) checks [sweep] like any table."""
    base = tiny.read_text()
    with pytest.raises(PresetErrors) as err:
        load_preset_text(base + table, "p.toml")
    (problem,) = err.value.problems
    line += len(base.splitlines())  # `line`: the line within the table
    assert str(problem).startswith(f"p.toml:{line}: ") and message in str(problem), str(problem)
