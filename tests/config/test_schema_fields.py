"""The schema covers every field of the reference, with consistent metadata."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tuitrain.config import FIELDS, GROUPS, new_preset_text, schema

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "training-arguments.md"
EXTRA = ["lr_scheduler_kwargs", "optim_target_modules", "logging_first_step", "logging_nan_inf_filter",
         "early_stopping_patience", "early_stopping_threshold", "save_only_model", "save_safetensors",
         "full_determinism", "torch_compile", "torch_compile_backend", "torch_compile_mode",
         "dataloader_prefetch_factor", "dataloader_persistent_workers", "eval_on_start", "fsdp",
         "fsdp_config", "fsdp_min_num_params", "generation_max_length", "generation_num_beams",
         "generation_config"]


# The reference's names as of this commit, so the coverage tests also run where the
# reference is not beside the checkout; `test_reference_is_read` keeps the two in step.
SNAPSHOT = Path(__file__).with_name("reference_names.txt")


def snapshot_names() -> set[str]:
    return set(SNAPSHOT.read_text().split())


def reference_names() -> set[str]:
    """Argument names from the first column of the reference's argument tables."""
    if not REFERENCE.exists():
        return snapshot_names()
    text = REFERENCE.read_text()
    names: set[str] = set()
    in_table = False
    for line in text.splitlines():
        if line.startswith("| Argument |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and line.startswith("| `"):
            names.update(re.findall(r"`([a-z_0-9]+)`", line.split("|")[1]))
    return names


def test_reference_is_read() -> None:
    names = reference_names()
    assert {"learning_rate", "hub_token", "fsdp_config", "train_batch_size"} <= names
    assert names == snapshot_names(), "the reference changed: regenerate reference_names.txt"


@pytest.mark.parametrize("name", sorted(reference_names() | set(EXTRA)))
def test_every_reference_name_is_in_a_new_preset(name: str) -> None:
    assert re.search(rf"\b{name}\b", new_preset_text()), name


@pytest.mark.parametrize("name", sorted(reference_names() | set(EXTRA)))
def test_every_reference_name_is_a_field_or_alias(name: str) -> None:
    if name in schema.READ_ONLY:
        return
    assert schema.field(name).key in (name, schema.ALIASES.get(name, schema.field(name)).key)


def test_groups_in_order() -> None:
    assert [g.key for g in GROUPS] == ["task", "core", "optimizer", "dataloader", "logging",
                                       "evaluation", "distributed", "precision", "reproducibility",
                                       "launch"]
    seen = [f.group for f in FIELDS.values()]
    assert seen == sorted(seen, key=[g.key for g in GROUPS].index)


def test_hf_class_matches_pinned_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    ta = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    s2s = {f.name for f in dataclasses.fields(transformers.Seq2SeqTrainingArguments)} - ta
    for f in FIELDS.values():
        if f.hf_class == "TrainingArguments":
            assert f.hf_name in ta, f.name
        elif f.hf_class == "Seq2SeqTrainingArguments":
            assert f.hf_name in s2s, f.name
        else:
            assert f.hf_name not in ta, f.name


def test_field_metadata() -> None:
    for f in FIELDS.values():
        assert f.help and f.help[-1] in ".)", f.name
        assert f.honoured or f.honoured_note, f.name
        if f.default is None:
            assert f.nullable, f.name
        if f.choices and f.default is not None and f.type == "str":
            assert f.default in f.choices, f.name
    assert schema.field("lr") is schema.field("learning_rate")
    assert schema.field("evaluation_strategy").key == "eval_strategy"
    assert schema.field("deepspeed").honoured is False
    assert schema.field("sample_every").hf_name is None
    assert schema.field("generation_num_beams").hf_class == "Seq2SeqTrainingArguments"
