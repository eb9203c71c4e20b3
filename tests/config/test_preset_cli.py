"""`tuitrain preset …` end to end: each kind of bad preset exits 1 with its located line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuitrain.cli import main
from tuitrain.config import load_preset, load_preset_text, new_preset_text


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_new_then_validate(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.toml"
    assert run(capsys, "preset", "new", str(path))[0] == 0
    assert path.read_text() == new_preset_text()
    code, out, _ = run(capsys, "preset", "validate", str(path))
    assert code == 0 and out.strip() == f"{path}: ok"
    code, _, err = run(capsys, "preset", "new", str(path))
    assert code == 1 and "already exists" in err and "--force" in err
    assert run(capsys, "preset", "new", str(path), "--force")[0] == 0


BAD = [
    # (preset text, expected line, expected fragments)
    ("[core]\nmax_steps = = 3\n", "2", ["TOML syntax error"]),
    ("[optimizer]\nlearning_rat = 0.1\n", "2", ["optimizer.learning_rat", "did you mean 'learning_rate'"]),
    ("[core]\n\nlearning_rate = 0.1\n", "3", ["belongs in [optimizer]"]),
    ("[optimiser]\nlearning_rate = 0.1\n", "1", ["unknown table [optimiser]", "did you mean [optimizer]"]),
    ("[core]\nper_device_train_batch_size = 8.5\n", "2", ["expected an integer"]),
    ("[precision]\nfp16 = 1\n", "2", ["expected a boolean"]),
    ("[optimizer]\nlr_scheduler_type = \"cosin\"\n", "2", ["did you mean 'cosine'"]),
    ("[optimizer]\n# c\nwarmup_ratio = 1.5\n", "3", ["out of range", "<= 1"]),
    ("[optimizer]\nlearning_rate = nan\n", "2", ["not allowed", "finite"]),
    ("[precision]\nfp16 = true\nbf16 = true\n", "3", ["fp16 and bf16"]),
    ("[logging]\neval_strategy = \"steps\"\nsave_strategy = \"epoch\"\nload_best_model_at_end = true\n",
     "4", ["match"]),
    ("[logging]\neval_strategy = \"steps\"\neval_steps = 100\nsave_steps = 250\nload_best_model_at_end = true\n",
     "4", ["round multiple"]),
    ("[logging]\nsave_steps = 10.5\n", "2", ["whole number"]),
    ("[optimizer]\nlr_scheduler_type = \"reduce_lr_on_plateau\"\n", "2", ["needs an eval strategy"]),
    ("[logging]\neval_strategy = \"steps\"\nearly_stopping_patience = 3\n", "3", ["metric_for_best_model"]),
    ("[optimizer]\nlr_scheduler_type = \"polynomial\"\nlearning_rate = 1e-8\n", "1", ["lr_end"]),
    ("[optimizer]\nlr_scheduler_type = \"cosine_with_min_lr\"\n", "1", ["exactly one of min_lr"]),
    ("[optimizer]\noptim = \"galore_adamw\"\n", "2", ["optim_target_modules"]),
    ("[core]\ngradient_accumulation_steps = 2\n[optimizer]\noptim = \"galore_adamw_layerwise\"\n"
     "optim_target_modules = [\"attn\"]\n", "2", ["forbids gradient accumulation"]),
    ("[dataloader]\ndataloader_prefetch_factor = 2\n", "2", ["dataloader_num_workers > 0"]),
    ("[optimizer]\noptim = \"adamw_bnb_8bit\"\n", "2", ["pip install 'bitsandbytes>=0.41.1'"]),
    ("[task]\nname = \"char_gpt\"\n[task.options]\nblok_size = 64\n", "4", ["did you mean 'block_size'"]),
    ("[task]\nname = \"chargpt\"\n", "2", ["unknown task", "char_gpt"]),
    ("[launch]\nnproc_per_node = 2\n", "2", ["torchrun"]),
    ("[dataloader]\ntrain_batch_size = 64\n", "2", ["cannot be set"]),
    ("learning_rate = 0.1\n", "1", ["inside [optimizer]"]),
]


@pytest.mark.parametrize("text,line,fragments", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_preset_exits_1_with_its_line(tmp_path: Path, capsys, text: str, line: str, fragments) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, out, err = run(capsys, "preset", "validate", str(path))
    assert code == 1, out
    assert "Traceback" not in err
    first = err.strip().splitlines()[0]
    assert first.startswith(f"{path}:{line}:"), first
    for fragment in fragments:
        assert fragment in err, err


def test_polynomial_points_at_the_kwargs_or_scheduler() -> None:
    text = "[optimizer]\nlr_scheduler_type = \"polynomial\"\nlearning_rate = 1e-3\n" \
           "lr_scheduler_kwargs = { lr_end = 0.01 }\n"
    with pytest.raises(Exception) as info:
        load_preset_text(text, "p.toml")
    assert str(info.value).startswith("p.toml:4: optimizer.lr_scheduler_kwargs: polynomial lr_end")


def test_alias_loads_with_a_notice(tmp_path: Path, capsys) -> None:
    path = tmp_path / "a.toml"
    path.write_text("[optimizer]\nlr = 0.003\n[logging]\nevaluation_strategy = \"epoch\"\n")
    preset = load_preset(path)
    assert preset.args.learning_rate == 0.003 and preset.args.eval_strategy == "epoch"
    lines = [str(n) for n in preset.notices]
    assert f"{path}:2: optimizer.lr: is an alias of learning_rate; loaded as learning_rate " \
           "(rename it to learning_rate)" in lines
    assert any(l.startswith(f"{path}:4: logging.evaluation_strategy") for l in lines)
    code, out, _ = run(capsys, "preset", "validate", str(path))
    assert code == 0 and "notice:" in out


def test_hf_defaults_resolved() -> None:
    p = load_preset_text("[logging]\neval_strategy = \"steps\"\nlogging_steps = 20\n"
                         "load_best_model_at_end = true\nsave_steps = 40\n", "p")
    assert p.args.eval_steps == 20 and p.args.metric_for_best_model == "loss"
    assert p.args.greater_is_better is False and p.args.do_eval is True
    p = load_preset_text("[optimizer]\nwarmup_steps = 10\nwarmup_ratio = 0.1\n", "p")
    assert any("warmup_steps" in str(n) and "wins" in str(n) for n in p.notices)


def test_overrides_and_their_errors(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.toml"
    path.write_text("[optimizer]\nlr = 0.1\n")
    p = load_preset(path, ["max_steps=7", "optimizer.lr=0.5", "task.options.block_size=16",
                           "lr_scheduler_type=cosine"])
    assert (p.args.max_steps, p.args.learning_rate, p.task.options["block_size"]) == (7, 0.5, 16)
    assert p.args.lr_scheduler_type == "cosine"
    code, _, err = run(capsys, "preset", "show", str(path), "--set", "core.max_steps=ten")
    assert code == 1
    assert err.startswith("--set core.max_steps=ten: core.max_steps: expected an integer")
    code, out, _ = run(capsys, "preset", "show", str(path), "--set", "max_steps=50")
    assert code == 0 and "* max_steps = 50" in out and "total steps: 50" in out
    assert "global batch: 8" in out


def test_round_trip_of_resolved_preset() -> None:
    text = "[task]\nname = \"modular\"\n[task.options]\nmodulus = 13\n[logging]\neval_strategy = \"steps\"\n" \
           "[launch]\nlauncher = \"torchrun\"\nnproc_per_node = \"gpu\"\nenv = { NCCL_DEBUG = \"INFO\" }\n" \
           "[optimizer]\nlr_scheduler_type = \"cosine_with_restarts\"\nlr_scheduler_kwargs = { num_cycles = 2 }\n"
    p = load_preset_text(text, "p")
    q = load_preset_text(p.to_toml(), "q")
    assert q.values() == p.values()
    assert p.task.options["modulus"] == 13 and p.launch.env == {"NCCL_DEBUG": "INFO"}


def test_shipped_presets_validate(capsys) -> None:
    from tuitrain.paths import shipped_presets

    names = list(shipped_presets())
    if not names:
        pytest.skip("no shipped presets yet")
    code, out, err = run(capsys, "preset", "validate", *names)
    assert code == 0, err


def test_export_python_and_import(tmp_path: Path, capsys) -> None:
    src = tmp_path / "p.toml"
    src.write_text("[optimizer]\nlearning_rate = 0.002\n[core]\nmax_steps = 9\n")
    code, out, _ = run(capsys, "preset", "export", str(src), "--format", "python")
    assert code == 0 and "TrainingArguments(" in out and "learning_rate=0.002" in out
    js = tmp_path / "p.json"
    assert run(capsys, "preset", "export", str(src), "-o", str(js))[0] == 0
    out_toml = tmp_path / "back.toml"
    assert run(capsys, "preset", "import", str(js), "-o", str(out_toml))[0] == 0
    back = load_preset(out_toml)
    assert back.args.learning_rate == 0.002 and back.args.max_steps == 9
