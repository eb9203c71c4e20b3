"""What compute_metrics receives, compared with transformers.Trainer's: the EvalPrediction class and
its fields, batch by batch with batch_eval_metrics, per include_for_metrics, eval_do_concat_batches,
eval_accumulation_steps and preprocess_logits_for_metrics; and do_predict on the task's test set."""

from __future__ import annotations

import json
import math

import pytest
import transformers

from harness import assert_same, preset, run_engine, run_hf

EVALS = {"eval_strategy": "steps", "eval_steps": 2, "max_steps": 4, "per_device_eval_batch_size": 4}


def _calls(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _same(a, b, where: str) -> None:
    """Equal structure (kinds, keys, lengths) and numbers equal up to summation order."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), f"{where}: {list(a)} vs {list(b) if isinstance(b, dict) else b}"
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: lengths {len(a)} vs {len(b) if isinstance(b, list) else b}"
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=2e-5, abs=1e-6), f"{where}: {a} vs {b}"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def _compare(tmp_path, settings: dict, options: dict | None = None) -> list[dict]:
    options = dict(options or {})
    ours = run_engine(tmp_path, {**EVALS, **settings}, {**options, "record": str(tmp_path / "ours.jsonl")})
    hf = run_hf(tmp_path, {**EVALS, **settings}, {**options, "record": str(tmp_path / "hf.jsonl")})
    assert_same(ours, hf)
    calls_ours, calls_hf = _calls(tmp_path / "ours.jsonl"), _calls(tmp_path / "hf.jsonl")
    assert len(calls_ours) == len(calls_hf) > 0
    for i, (a, b) in enumerate(zip(calls_ours, calls_hf)):
        _same(a, b, f"compute_metrics call {i}")
    return calls_ours


@pytest.mark.parametrize("settings, options", [
    ({}, {}),
    ({"include_for_metrics": ["inputs"]}, {}),
    ({"include_for_metrics": ["loss"]}, {}),
    ({"include_for_metrics": ["inputs", "loss"], "eval_do_concat_batches": False}, {}),
    ({"eval_accumulation_steps": 1}, {}),
    ({"eval_accumulation_steps": 2, "include_for_metrics": ["loss"]}, {"n_eval": 11}),
    ({}, {"preprocess": "argmax"}),
    ({"eval_do_concat_batches": False}, {"model": "lm", "preprocess": "argmax"}),
    ({"include_for_metrics": ["inputs"]}, {"model": "lm"}),
], ids=["plain", "inputs", "loss", "inputs-loss-no-concat", "accumulate-1", "accumulate-2-ragged-last",
        "preprocess", "lm-no-concat-preprocess", "lm-inputs"])
def test_compute_metrics_gets_what_transformers_gives(tmp_path, settings, options):
    calls = _compare(tmp_path, settings, options)
    assert {c["class"] for c in calls} == {"EvalPrediction"}
    assert calls[0]["unpacked"] == 2 + len(settings.get("include_for_metrics", []))
    if settings.get("eval_do_concat_batches") is False:
        assert "list" in calls[0]["predictions"]  # a list of batches, not one array


def test_batch_eval_metrics_calls_per_batch_with_compute_result(tmp_path):
    calls = _compare(tmp_path, {"batch_eval_metrics": True, "include_for_metrics": ["inputs", "loss"]}, {"n_eval": 10})
    # two evaluations of 10 examples in batches of 4: 3 calls each, the last with compute_result
    assert [c["compute_result"] for c in calls] == [False, False, True] * 2
    assert "tensor" in calls[0]["predictions"] and "dict" in calls[0]["inputs"]  # the batch's own tensors


def test_do_predict_uses_the_test_set_as_transformers_predict(tmp_path):
    settings = {**EVALS, "do_predict": True}
    options = {"n_test": 7, "preprocess": "argmax", "record": str(tmp_path / "calls.jsonl")}
    from tuitrain.engine.trainer import Trainer
    from parity_task import build

    trainer = Trainer(preset(settings, options), tmp_path / "engine")
    try:
        assert trainer.train() == 0
        engine_weights = {k: v.clone() for k, v in trainer.raw_model.state_dict().items()}
    finally:
        trainer.close()
    events = [json.loads(line) for line in (tmp_path / "engine" / "metrics.jsonl").read_text().splitlines()]
    ours = next(e for e in events if e["kind"] == "predict")
    assert not [e for e in events if e["kind"] == "warning"]  # a test set: no fallback to the eval set

    p = preset(settings, options)
    bundle = build(dict(p.task.options), p.args)
    bundle.model.load_state_dict(engine_weights)
    from tuitrain.config.hf import export_hf_dict
    args = transformers.TrainingArguments(**{**export_hf_dict(p), "output_dir": str(tmp_path / "hf"),
                                             "use_cpu": True, "report_to": []})
    hf = transformers.Trainer(model=bundle.model, args=args, eval_dataset=bundle.eval_dataset,
                              compute_metrics=bundle.compute_metrics,
                              preprocess_logits_for_metrics=bundle.preprocess_logits_for_metrics)
    expected = hf.predict(bundle.test_dataset).metrics
    for key in ("test_loss", "test_pred_sum"):
        assert ours[key] == pytest.approx(expected[key], rel=2e-5), key
    assert ours["test_pred_sum"] != pytest.approx(
        hf.predict(bundle.eval_dataset).metrics["test_pred_sum"], rel=1e-3)  # not the eval set
