"""HF export/import: the JSON goes through HfArgumentParser, the snippet executes, round trips hold."""

from __future__ import annotations

import dataclasses
import json
import tomllib
from types import SimpleNamespace

import pytest

transformers = pytest.importorskip("transformers")

from tuitrain.config import hf  # noqa: E402
from tuitrain.config.schema import FIELDS, HF_GROUPS  # noqa: E402
from tuitrain.errors import TuitrainError  # noqa: E402

# Many non-default values that TrainingArguments accepts on a CPU-only machine (no
# ddp_backend: accelerate would then expect an initialised process group).
CHANGES = {
    "output_dir": "out/exp1", "per_device_train_batch_size": 4, "per_device_eval_batch_size": 16,
    "gradient_accumulation_steps": 4, "num_train_epochs": 2.5, "max_steps": 1200,
    "do_train": True, "do_eval": True,
    "learning_rate": 3e-4, "weight_decay": 0.1, "adam_beta1": 0.8, "adam_beta2": 0.95,
    "adam_epsilon": 1e-6, "lr_scheduler_type": "cosine_with_min_lr",
    "lr_scheduler_kwargs": {"min_lr_rate": 0.1, "num_cycles": 0.5}, "warmup_steps": 0,
    "warmup_ratio": 0.05, "max_grad_norm": 0.5, "optim": "adamw_torch",
    "dataloader_num_workers": 2, "dataloader_pin_memory": False, "dataloader_drop_last": True,
    "remove_unused_columns": False, "label_names": ["labels", "aux"], "group_by_length": True,
    "length_column_name": "len", "logging_strategy": "steps", "logging_steps": 10,
    "save_strategy": "steps", "save_steps": 100, "save_total_limit": 3, "eval_strategy": "steps",
    "eval_steps": 50, "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
    "greater_is_better": False, "prediction_loss_only": True, "include_inputs_for_metrics": True,
    "eval_accumulation_steps": 4, "ddp_bucket_cap_mb": 50, "ddp_find_unused_parameters": False,
    "activation_checkpointing": True, "activation_checkpointing_kwargs": {"use_reentrant": False},
    "label_smoothing_factor": 0.1, "seed": 7, "data_seed": 11, "disable_tqdm": True,
    "report_to": ["none"], "run_name": "exp1",
}


def make_preset(changes: dict, path: str = "exp1.toml") -> SimpleNamespace:
    """A preset stand-in: every HF-group field at its default, then `changes`."""
    args = {f.key: f.default for f in FIELDS.values() if f.group in HF_GROUPS}
    unknown = set(changes) - set(args)
    assert not unknown, unknown
    args.update(changes)
    return SimpleNamespace(path=path, args=SimpleNamespace(**args))


def preset_from_toml(text: str) -> SimpleNamespace:
    data = tomllib.loads(text)
    return make_preset({k: v for table in data.values() for k, v in table.items()})


def parse_hf(tmp_path, data: dict):
    path = tmp_path / "args.json"
    path.write_text(json.dumps(data))
    parser = transformers.HfArgumentParser(transformers.TrainingArguments)
    (args,) = parser.parse_json_file(str(path), allow_extra_keys=False)
    return args


def test_export_is_accepted_and_values_survive(tmp_path) -> None:
    exported = hf.export_hf_dict(make_preset(CHANGES))
    args = parse_hf(tmp_path, exported)
    for key, value in exported.items():
        got = getattr(args, key)
        got = getattr(got, "value", got)  # enums compare by their string
        if key == "report_to":
            assert got in (value, [])  # HF turns ["none"] into no reporters
            continue
        assert got == value, key
    assert args.warmup_steps == 0.05  # warmup_ratio folded into a fractional warmup_steps
    assert args.train_sampling_strategy == "group_by_length"
    assert args.include_for_metrics == ["inputs"]
    assert "warmup_ratio" not in exported and "group_by_length" not in exported


def test_export_defaults_sets_output_dir(tmp_path) -> None:
    exported = hf.export_hf_dict(make_preset({}, path="presets/quick.toml"))
    assert exported["output_dir"] == "runs/quick"
    assert all(v is not None for v in exported.values())
    parse_hf(tmp_path, exported)


def test_export_import_export_round_trip(tmp_path) -> None:
    first = hf.export_hf_dict(make_preset(CHANGES))
    path = tmp_path / "args.json"
    path.write_text(json.dumps(first))
    text = hf.import_hf_json(path)
    second = hf.export_hf_dict(preset_from_toml(text))
    assert second == first


def test_import_full_to_json_string(tmp_path) -> None:
    """What `TrainingArguments.to_json_string()` writes imports cleanly and re-exports equal values."""
    original = transformers.TrainingArguments(
        output_dir=str(tmp_path / "o"), learning_rate=1e-3, lr_scheduler_type="cosine",
        warmup_steps=0.1, per_device_train_batch_size=2, seed=3, report_to="none",
    )
    path = tmp_path / "full.json"
    path.write_text(original.to_json_string())
    text = hf.import_hf_json(path)
    assert "notice" not in text or "debug" not in text
    args = parse_hf(tmp_path, hf.export_hf_dict(preset_from_toml(text)))
    for key in ("learning_rate", "warmup_steps", "per_device_train_batch_size", "seed", "output_dir"):
        assert getattr(args, key) == getattr(original, key), key
    assert args.lr_scheduler_type == original.lr_scheduler_type


def test_import_unknown_keys_named(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"output_dir": "x", "learnin_rate": 1e-3, "zzz": 1}))
    with pytest.raises(TuitrainError, match="learnin_rate, zzz"):
        hf.import_hf_json(path)


def test_import_unsupported_key_gives_notice(tmp_path) -> None:
    path = tmp_path / "liger.json"
    path.write_text(json.dumps({"output_dir": "x", "use_liger_kernel": True, "seed": 5}))
    text = hf.import_hf_json(path)
    assert "use_liger_kernel" in text and "notice" in text
    assert tomllib.loads(text)["reproducibility"]["seed"] == 5


def test_import_bad_json(tmp_path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{\n  'x': 1\n}")
    with pytest.raises(TuitrainError, match="broken.json:2: not valid JSON"):
        hf.import_hf_json(path)


def test_python_snippet_executes_to_equal_args(tmp_path) -> None:
    preset = make_preset(CHANGES)
    snippet = hf.export_python(preset)
    compile(snippet, "<snippet>", "exec")
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - our own generated code
    from_snippet = scope["args"]
    assert type(from_snippet) is transformers.TrainingArguments
    from_json = parse_hf(tmp_path, hf.export_hf_dict(preset))
    for f in dataclasses.fields(transformers.TrainingArguments):
        if f.name in ("logging_dir",):
            continue
        assert getattr(from_snippet, f.name) == getattr(from_json, f.name), f.name


def test_python_snippet_switches_to_seq2seq() -> None:
    snippet = hf.export_python(make_preset({"predict_with_generate": True, "generation_num_beams": 4}))
    assert "Seq2SeqTrainingArguments(" in snippet
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102
    assert scope["args"].predict_with_generate is True and scope["args"].generation_num_beams == 4


def test_python_snippet_spells_out_only_an_optimizer_other_than_the_shared_default() -> None:
    # The schema's default is transformers' own (adamw_torch_fused): nothing to write; the
    # unfused adamw_torch must be spelled out.
    assert "optim=" not in hf.export_python(make_preset({}))
    assert "optim='adamw_torch'" in hf.export_python(make_preset({"optim": "adamw_torch"}))


def test_round_trip_through_the_preset_loader(tmp_path) -> None:
    """The imported TOML validates with the real loader and re-exports the same JSON."""
    preset_mod = pytest.importorskip("tuitrain.config.preset")
    from tuitrain.config.schema import field

    tables: dict = {}
    for key, value in CHANGES.items():
        tables.setdefault(field(key).group, {})[key] = value
    first = hf.export_hf_dict(preset_mod.load_preset_text(hf.tables_to_toml(tables), "exp1.toml"))
    path = tmp_path / "args.json"
    path.write_text(json.dumps(first))
    second = hf.export_hf_dict(preset_mod.load_preset_text(hf.import_hf_json(path), "exp1.toml"))
    assert second == first
    parse_hf(tmp_path, second)
