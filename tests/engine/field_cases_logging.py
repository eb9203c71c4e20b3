"""Cases of the "every honoured field acts" table: [logging] and [evaluation]."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from field_harness import changes, ddp_case, failure, losses, ok, outcome, registrar

CASES: dict = {}
case = registrar(CASES)


def steps(kind: str):
    return lambda r: [e["step"] for e in ok(r).events(kind)]


# -- when to log ----------------------------------------------------------------------------------

@case("logging.logging_dir")
def _logging_dir(tmp: Path) -> None:
    from fake_integrations import install_tensorboard

    with pytest.MonkeyPatch.context() as mp:
        rec = install_tensorboard(mp)
        default = ok(outcome(tmp, {"report_to": ["tensorboard"]}))
        chosen = ok(outcome(tmp, {"report_to": ["tensorboard"], "logging_dir": "tb"}))
    (first,), (second,) = rec.named("init")
    assert Path(first).parent == default.run_dir / "runs" and Path(second) == chosen.run_dir / "tb"


EPOCHS = {"max_steps": -1, "num_train_epochs": 2, "per_device_train_batch_size": 13}
CASES["logging.logging_strategy"] = changes("logging.logging_strategy", "epoch", steps("train"), base=EPOCHS,
                                            expect=lambda a, b: a == [1, 2, 3, 4, 5, 6] and b == [3, 6])
CASES["logging.logging_steps"] = changes("logging.logging_steps", 2, steps("train"), expect=lambda a, b: b == [2, 4])
CASES["logging.logging_first_step"] = changes("logging.logging_first_step", True, steps("train"),
                                              base={"logging_steps": 3}, expect=lambda a, b: (a, b) == ([3], [1, 3]))
# a NaN loss at step 2: HF's filter logs the running mean instead; without it the NaN shows (null)
CASES["logging.logging_nan_inf_filter"] = changes(
    "logging.logging_nan_inf_filter", False, lambda r: [x is None for x in losses(r)],
    base={"task": "probe", "options": {"nan_steps": [2]}},
    expect=lambda a, b: not any(a) and b == [False, True, False, False])
CASES["logging.log_level"] = changes("logging.log_level", "info", lambda r: "***** Running training *****" in ok(r).out,
                                     expect=lambda a, b: not a and b)
CASES["logging.log_level_replica"] = ddp_case("log_level_replica")
CASES["logging.log_on_each_node"] = ddp_case("log_on_each_node")
CASES["logging.include_num_input_tokens_seen"] = changes(
    "logging.include_num_input_tokens_seen", "all", lambda r: [e.get("num_input_tokens_seen") for e in ok(r).events("train")],
    base={"task": "probe", "options": {"varlen": True}, "train_sampling_strategy": "sequential"},
    expect=lambda a, b: a == [None] * 4 and b[0] > 0 and b == sorted(b) and len(set(b)) == 4)

# -- saving -----------------------------------------------------------------------------------------

def checkpoints(result) -> list[str]:
    return ok(result).checkpoints()


SAVES = {"save_strategy": "steps"}
CASES["logging.save_strategy"] = changes("logging.save_strategy", "steps", checkpoints, base={"save_steps": 2},
                                         expect=lambda a, b: (a, b) == ([], ["checkpoint-2", "checkpoint-4"]))
CASES["logging.save_steps"] = changes("logging.save_steps", 3, checkpoints, base=SAVES,
                                      expect=lambda a, b: (a, b) == (["checkpoint-4"], ["checkpoint-3", "checkpoint-4"]))
CASES["logging.save_total_limit"] = changes("logging.save_total_limit", 2, checkpoints, base={**SAVES, "save_steps": 1},
                                            expect=lambda a, b: len(a) == 4 and b == ["checkpoint-3", "checkpoint-4"])
CASES["logging.save_on_each_node"] = ddp_case("save_on_each_node")
CASES["logging.save_only_model"] = changes(
    "logging.save_only_model", True, lambda r: sorted(p.name for p in (ok(r).run_dir / "checkpoint-4").iterdir()),
    base={**SAVES, "save_steps": 2},
    expect=lambda a, b: "optimizer.safetensors" in a and "optimizer.safetensors" not in b and "model.safetensors" in b)

# -- evaluation cadence and the best model --------------------------------------------------------

EVALS = {"eval_strategy": "steps", "eval_steps": 1}
CASES["logging.eval_strategy"] = changes("logging.eval_strategy", "steps", steps("eval"), base={"eval_steps": 2},
                                         expect=lambda a, b: (a, b) == ([], [2, 4]))
CASES["logging.eval_steps"] = changes("logging.eval_steps", 2, steps("eval"), base={"eval_strategy": "steps"},
                                      expect=lambda a, b: (a, b) == ([1, 2, 3, 4], [2, 4]))
CASES["logging.eval_delay"] = changes("logging.eval_delay", 3, steps("eval"), base=EVALS,
                                      expect=lambda a, b: b == [3, 4])
CASES["logging.eval_on_start"] = changes("logging.eval_on_start", True, steps("eval"), base={**EVALS, "eval_steps": 2},
                                         expect=lambda a, b: b == [0, 2, 4])


def best_metric(result):
    return ok(result).trainer.state.best.best_metric


def eval_values(result, key: str) -> list[float]:
    return [e[key] for e in ok(result).events("eval")]


@case("logging.metric_for_best_model")
def _metric(tmp: Path) -> None:
    base = {**EVALS, **SAVES, "save_steps": 1}
    none, mse = outcome(tmp, base), outcome(tmp, {**base, "metric_for_best_model": "mse"})
    assert best_metric(none) is None
    # HF: a metric whose name does not end in "loss" is better when greater
    assert best_metric(mse) == max(eval_values(mse, "eval_mse"))


@case("logging.greater_is_better")
def _greater(tmp: Path) -> None:
    base = {**EVALS, **SAVES, "save_steps": 1, "metric_for_best_model": "loss"}
    lower, higher = outcome(tmp, base), outcome(tmp, {**base, "greater_is_better": True})
    assert best_metric(lower) == min(eval_values(lower, "eval_loss"))
    assert best_metric(higher) == max(eval_values(higher, "eval_loss")) != best_metric(lower)


@case("logging.load_best_model_at_end")
def _load_best(tmp: Path) -> None:
    import torch

    from tuitrain.engine.checkpoint import load_checkpoint

    # the best eval_loss under greater_is_better is the worst one: not the last step's weights
    base = {**EVALS, **SAVES, "save_steps": 1, "metric_for_best_model": "loss", "greater_is_better": True}
    plain, best = ok(outcome(tmp, base)), ok(outcome(tmp, {**base, "load_best_model_at_end": True}))
    step = best.trainer.state.best.best_step
    assert step != 4
    reference = type(best.model)(4, 8)
    load_checkpoint(best.run_dir / f"checkpoint-{step}", reference, restore_rng=False)
    assert all(torch.equal(a, b) for a, b in zip(best.model.state_dict().values(), reference.state_dict().values()))
    assert not all(torch.equal(a, b) for a, b in zip(plain.model.state_dict().values(), reference.state_dict().values()))


# greater_is_better with a falling loss: every evaluation after the first is "worse"
STOPPING = {**EVALS, "max_steps": 8, "metric_for_best_model": "loss"}
CASES["logging.early_stopping_patience"] = changes(
    "logging.early_stopping_patience", 2, steps("train"), base={**STOPPING, "greater_is_better": True},
    expect=lambda a, b: len(a) == 8 and b == [1, 2, 3])
CASES["logging.early_stopping_threshold"] = changes(
    "logging.early_stopping_threshold", 10.0, steps("train"), base={**STOPPING, "early_stopping_patience": 2},
    expect=lambda a, b: len(a) == 8 and b == [1, 2, 3])


def _resumed(tmp: Path, first: dict, then: dict, name: str):
    """Train `first` to checkpoint-2, then resume it with `then` (the run's preset changed)."""
    run_dir = tmp / name
    ok(outcome(tmp, {**first, "max_steps": 2, **SAVES, "save_steps": 2}, run_dir=run_dir))
    return ok(outcome(tmp, {**first, **then, **SAVES, "save_steps": 2}, run_dir=run_dir, resume_from="checkpoint-2"))


@case("logging.restore_callback_states_from_checkpoint")
def _restore_callbacks(tmp: Path) -> None:
    # checkpoint-2 holds a patience counter of 1: restored, two more "worse" evaluations stop the
    # run at step 4; HF's default starts the count afresh, and it stops at step 5
    base = {**STOPPING, "greater_is_better": True, "early_stopping_patience": 3}
    fresh = _resumed(tmp, base, {"max_steps": 8}, "fresh")
    restored = _resumed(tmp, {**base, "restore_callback_states_from_checkpoint": True}, {"max_steps": 8}, "restored")
    assert [e["step"] for e in fresh.events("train")][-1] == 5
    assert [e["step"] for e in restored.events("train")][-1] == 4


@case("logging.ignore_data_skip")
def _ignore_data_skip(tmp: Path) -> None:
    # 24 items, batches of 4: six updates an epoch. Resumed at step 2, HF skips the 8 items the
    # epoch already trained on; with ignore_data_skip the epoch's data starts from its first batch
    base = {"task": "probe"}
    skip = _resumed(tmp, base, {"max_steps": 4}, "skip")
    again = _resumed(tmp, base, {"max_steps": 4, "ignore_data_skip": True}, "again")
    uninterrupted = ok(outcome(tmp, {**base, "max_steps": 6}))
    assert skip.order() == uninterrupted.order()[8:16]
    assert again.order() == uninterrupted.order()[0:8]
    assert [e["step"] for e in again.events("train")] == [3, 4]  # the step count goes on


# -- what evaluation computes ---------------------------------------------------------------------

def metric_keys(result) -> list[str]:
    return sorted({k for e in ok(result).events("eval") for k in e if k.startswith("eval_")})


CASES["evaluation.prediction_loss_only"] = changes(
    "evaluation.prediction_loss_only", True, metric_keys, base={**EVALS, "eval_steps": 4},
    expect=lambda a, b: "eval_mse" in a and b == ["eval_loss"])
PROBE_EVAL = {"task": "probe", **EVALS, "eval_steps": 4, "per_device_eval_batch_size": 4}
CASES["evaluation.include_inputs_for_metrics"] = changes(
    "evaluation.include_inputs_for_metrics", True, lambda r: [e["eval_has_inputs"] for e in ok(r).events("eval")],
    base=PROBE_EVAL, expect=lambda a, b: (a, b) == ([0.0], [1.0]))


def metric_calls(result) -> list[dict]:
    return ok(result).model.metric_calls


@case("evaluation.include_for_metrics")
def _include_for_metrics(tmp: Path) -> None:
    # HF: "inputs" and "loss" reach compute_metrics as EvalPrediction.inputs / .losses (one loss per example)
    (call,) = metric_calls(outcome(tmp, {**PROBE_EVAL, "include_for_metrics": ["inputs", "loss"]}))
    assert call["inputs"] is not None and len(call["inputs"]) == 10
    assert call["losses"] is not None and len(call["losses"]) == 10


@case("evaluation.eval_do_concat_batches")
def _concat(tmp: Path) -> None:
    # HF: false hands compute_metrics the batches' outputs as a list, one array per batch
    (joined,) = metric_calls(outcome(tmp, PROBE_EVAL))
    (split,) = metric_calls(outcome(tmp, {**PROBE_EVAL, "eval_do_concat_batches": False}))
    assert len(joined["predictions"]) == 10
    assert isinstance(split["predictions"], list) and [len(p) for p in split["predictions"]] == [4, 4, 2]


@case("evaluation.batch_eval_metrics")
def _batch_metrics(tmp: Path) -> None:
    # HF: compute_metrics once per batch, with compute_result=True on the last one only
    calls = metric_calls(outcome(tmp, {**PROBE_EVAL, "batch_eval_metrics": True}))
    assert [c["compute_result"] for c in calls] == [False, False, True]
    assert [len(c["predictions"]) for c in calls] == [4, 4, 2]


@case("evaluation.eval_accumulation_steps")
def _accumulation(tmp: Path) -> None:
    # HF: every eval_accumulation_steps batches the gathered outputs go to the host as numpy and
    # the device cache is emptied (`torch.cuda.empty_cache()`); compute_metrics sees the same arrays
    import torch

    counts = []
    for extra in ({}, {"eval_accumulation_steps": 1}):
        emptied = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
            (call,) = metric_calls(outcome(tmp, {**PROBE_EVAL, "per_device_eval_batch_size": 2, **extra}))
        counts.append((len(emptied), len(call["predictions"])))
    assert counts == [(0, 10), (5, 10)]


def _mems_fed(result) -> bool:
    return any("mems" in s["keys"] for s in ok(result).seen())


CASES["evaluation.past_index"] = changes("evaluation.past_index", 0, _mems_fed, base={"task": "probe"},
                                         expect=lambda a, b: not a and b)

# -- generation -------------------------------------------------------------------------------------

GEN = {"task": "char_gpt", "max_steps": 2, "seed": 5}


def samples(result) -> list[str]:
    return [e["text"] for e in ok(result).events("sample")]


CASES["evaluation.predict_with_generate"] = changes(
    "evaluation.predict_with_generate", True, steps("sample"), base={**GEN, "eval_strategy": "steps", "eval_steps": 2},
    expect=lambda a, b: (a, b) == ([], [2]))
SAMPLES = {**GEN, "sample_every": 2, "sample_max_new_tokens": 12}
CASES["evaluation.sample_every"] = changes("evaluation.sample_every", 1, steps("sample"), base=GEN,
                                           expect=lambda a, b: (a, b) == ([], [1, 2]))
CASES["evaluation.sample_max_new_tokens"] = changes(
    "evaluation.sample_max_new_tokens", 20, lambda r: len(samples(r)[0]), base=SAMPLES, expect=lambda a, b: b == a + 8)
# HF's generation_max_length: the whole sequence, prompt included
CASES["evaluation.generation_max_length"] = changes(
    "evaluation.generation_max_length", 30, lambda r: len(samples(r)[0]), base={**SAMPLES, "sample_prompt": "abc"},
    expect=lambda a, b: (a, b) == (15, 30))
CASES["evaluation.generation_num_beams"] = changes("evaluation.generation_num_beams", 3, samples, base=SAMPLES)
CASES["evaluation.sample_temperature"] = changes("evaluation.sample_temperature", 1e-6, samples, base=SAMPLES)
CASES["evaluation.sample_top_k"] = changes("evaluation.sample_top_k", 1, samples, base=SAMPLES)
CASES["evaluation.sample_prompt"] = changes("evaluation.sample_prompt", "Zq", samples, base=SAMPLES,
                                            expect=lambda a, b: b[0].startswith("Zq") and not a[0].startswith("Zq"))


@case("evaluation.generation_config")
def _generation_config(tmp: Path) -> None:
    config = tmp / "generation_config.json"
    config.write_text(json.dumps({"max_new_tokens": 5, "do_sample": False}))
    plain, configured = outcome(tmp, SAMPLES), outcome(tmp, {**SAMPLES, "generation_config": str(config)})
    assert len(samples(plain)[0]) - len(samples(configured)[0]) == 7
