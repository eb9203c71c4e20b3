"""Where tuitrain deliberately differs from `transformers.Trainer` (README, "Differences from
transformers.Trainer"): each difference is pinned here, so changing it means changing the README."""

from __future__ import annotations

import math

import pytest

from harness import BASE, assert_same, run_engine, run_hf
from tuitrain.config import PresetErrors, load_preset_data

transformers = pytest.importorskip("transformers")


def test_past_index_feeds_mems_back_where_transformers_5_has_no_past_index(tmp_path):
    # transformers 5 dropped past_index; tuitrain keeps transformers 4's behaviour. Without it
    # the two agree on a model that takes mems; with it only tuitrain passes them back.
    settings = {"eval_strategy": "steps", "eval_steps": 2}
    assert_same(run_engine(tmp_path / "off", settings, {"model": "mems"}),
                run_hf(tmp_path / "off", settings, {"model": "mems"}))
    assert "past_index" not in {f.name for f in __import__("dataclasses").fields(transformers.TrainingArguments)}
    ours = run_engine(tmp_path / "on", {**settings, "past_index": 2}, {"model": "mems"})
    hf = run_hf(tmp_path / "off2", settings, {"model": "mems"})
    assert ours.train[0]["loss"] == pytest.approx(hf.train[0]["loss"], rel=1e-6)  # nothing cached yet
    assert ours.train[1]["loss"] != pytest.approx(hf.train[1]["loss"], rel=1e-6)  # step 1's output fed back


def test_a_nan_loss_without_the_filter_stays_in_its_own_logging_window(tmp_path):
    # logging_nan_inf_filter = false: the window with the NaN logs NaN in both; transformers'
    # running sum is reset by subtracting it from itself, so it stays NaN to the end of
    # training, while tuitrain's next windows log their own losses again.
    settings = {"logging_nan_inf_filter": False, "logging_steps": 2}
    ours, hf = run_engine(tmp_path, settings, {"nan_train": [2]}), run_hf(tmp_path, settings, {"nan_train": [2]})
    assert [t["step"] for t in ours.train] == [t["step"] for t in hf.train] == [2, 4, 6, 8]
    assert ours.train[0]["loss"] == pytest.approx(hf.train[0]["loss"], rel=2e-5)
    assert math.isnan(ours.train[1]["loss"]) and math.isnan(hf.train[1]["loss"])
    assert all(math.isnan(t["loss"]) for t in hf.train[2:]) and math.isnan(hf.summary["train_loss"])
    assert all(math.isfinite(t["loss"]) for t in ours.train[2:])
    assert all(a["grad_norm"] == pytest.approx(b["grad_norm"], rel=2e-5) for a, b in zip(ours.train, hf.train))


def test_save_best_without_a_metric_is_refused_where_transformers_never_saves():
    with pytest.raises(PresetErrors, match="metric_for_best_model"):
        load_preset_data({"logging": {"save_strategy": "best", "eval_strategy": "steps"}})
    assert BASE["save_strategy"] == "no"
