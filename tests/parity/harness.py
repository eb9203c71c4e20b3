"""One configuration through tuitrain's engine and through `transformers.Trainer`, side by side.

`run_engine` and `run_hf` take the same settings (preset keys) and task options and return a
`Record` of what each trainer did: its train logs (loss, learning_rate, grad_norm, epoch per
logged step), its evaluations, its end-of-training summary, how many optimizer steps ran, the
checkpoint folders left, the best checkpoint and the final weights. The HF side gets its
`TrainingArguments` from the preset's own HF export, so the export is tested too.
`assert_same` compares two records with tolerances that absorb float summation order only.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from tuitrain.config import load_preset_data, schema
from tuitrain.config.hf import export_hf_dict

TASK = Path(__file__).with_name("parity_task.py")
BASE = {"per_device_train_batch_size": 4, "per_device_eval_batch_size": 4, "learning_rate": 0.05,
        "max_steps": 8, "logging_steps": 1, "save_strategy": "no", "seed": 0,
        "train_sampling_strategy": "sequential", "report_to": ["none"], "disable_tqdm": True}
TRAIN_KEYS = ("loss", "learning_rate", "grad_norm", "epoch")
SUMMARY_KEYS = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss"}
_NOT_METRICS = {"step", "epoch", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
                "num_input_tokens_seen"}


@dataclass
class Record:
    """What one trainer did with one configuration."""

    train: list[dict]
    evals: list[dict]
    summary: dict
    optimizer_steps: int
    checkpoints: list[str]
    best: str | None
    weights: dict[str, torch.Tensor] = field(repr=False)
    run_dir: Path | None = None


def preset(settings: dict, options: dict | None = None):
    """The resolved preset of `settings` over `BASE`, training the parity task."""
    data: dict[str, Any] = {"task": {"name": f"{TASK}:build", "options": dict(options or {})}}
    for key, value in {**BASE, **settings}.items():
        f = schema.field(key)
        data.setdefault(f.group, {})[f.key] = value
    return load_preset_data(data, "<parity preset>")


@contextlib.contextmanager
def optimizer_steps():
    """Counts `optimizer.step()` calls of every torch optimizer while open (`counter["n"]`)."""
    calls: Counter = Counter()
    handle = register_optimizer_step_post_hook(lambda opt, a, kw: calls.update([id(opt)]))
    counter = {"n": 0}
    try:
        yield counter
    finally:
        handle.remove()
        counter["n"] = max(calls.values(), default=0)


def _checkpoints(out: Path) -> list[str]:
    return sorted((p.name for p in out.glob("checkpoint-*") if p.is_dir()), key=lambda n: int(n.split("-")[1]))


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _split(history: list[dict]) -> tuple[list[dict], list[dict], dict]:
    train = [{k: h.get(k) for k in ("step", *TRAIN_KEYS)} for h in history if "loss" in h]
    evals = [{k: v for k, v in h.items() if k not in ("kind", "t")} for h in history
             if any(k.startswith("eval_") for k in h)]
    summary = next((h for h in history if "train_runtime" in h and "loss" not in h), {})
    return train, evals, summary


def run_engine(tmp: Path, settings: dict, options: dict | None = None) -> Record:
    """Train with tuitrain's engine, in this process."""
    from tuitrain.engine.trainer import Trainer

    run_dir = tmp / "engine"
    trainer = Trainer(preset(settings, options), run_dir)
    try:
        with optimizer_steps() as steps:
            assert trainer.train() == 0, (run_dir / "metrics.jsonl").read_text()[-2000:]
    finally:
        trainer.close()
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    history = [{k: (math.nan if v is None else v) for k, v in e.items()} for e in events
               if e["kind"] in ("train", "eval", "summary")]
    train, evals, summary = _split(history)
    best = trainer.state.best.best_model_checkpoint
    return Record(train, evals, summary, steps["n"], _checkpoints(run_dir), best, _weights(trainer.raw_model), run_dir)


def run_hf(tmp: Path, settings: dict, options: dict | None = None) -> Record:
    """Train the same task with `transformers.Trainer`, from the preset's HF export."""
    transformers = pytest.importorskip("transformers")
    from parity_task import build

    p = preset(settings, options)
    out = tmp / "hf"
    hf_args = {**export_hf_dict(p), "output_dir": str(out), "use_cpu": True, "report_to": []}
    args = transformers.TrainingArguments(**hf_args)
    bundle = build(dict(p.task.options), p.args)
    trainer = transformers.Trainer(model=bundle.model, args=args, train_dataset=bundle.train_dataset,
                                   eval_dataset=bundle.eval_dataset, compute_metrics=bundle.compute_metrics,
                                   preprocess_logits_for_metrics=bundle.preprocess_logits_for_metrics,
                                   processing_class=bundle.processing_class)
    if p.args.early_stopping_patience:
        trainer.add_callback(transformers.EarlyStoppingCallback(p.args.early_stopping_patience,
                                                                p.args.early_stopping_threshold))
    with optimizer_steps() as steps:
        trainer.train()
    train, evals, summary = _split(trainer.state.log_history)
    best = trainer.state.best_model_checkpoint
    return Record(train, evals, summary, steps["n"], _checkpoints(out), Path(best).name if best else None,
                  _weights(trainer.model), out)


def _close(a, b, rel: float, abs_: float) -> bool:
    if a is None or b is None:
        return a is b
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == pytest.approx(b, rel=rel, abs=abs_)


def assert_same(ours: Record, hf: Record, rel: float = 2e-5, abs_: float = 1e-6) -> None:
    """Every number the issue lists, step by step (summation order is all the tolerance is for)."""
    assert [t["step"] for t in ours.train] == [t["step"] for t in hf.train], "logged steps"
    for a, b in zip(ours.train, hf.train):
        step = a["step"]
        assert a["epoch"] == pytest.approx(b["epoch"], rel=1e-12), f"epoch at step {step}"
        assert _close(a["learning_rate"], b["learning_rate"], 1e-9, 1e-15), f"learning_rate at step {step}: {a} {b}"
        assert _close(a["loss"], b["loss"], rel, abs_), f"loss at step {step}: {a['loss']} vs {b['loss']}"
        assert _close(a["grad_norm"], b["grad_norm"], rel, abs_), f"grad_norm at step {step}: {a} {b}"
    assert [(e["step"], e.get("epoch")) for e in ours.evals] == [(e["step"], pytest.approx(e.get("epoch"), rel=1e-12))
                                                                 for e in hf.evals], "evaluation steps"
    for a, b in zip(ours.evals, hf.evals):
        metrics = {k for k in b if k not in _NOT_METRICS}
        assert {k for k in a if k not in _NOT_METRICS} == metrics, f"eval metrics at step {a['step']}"
        for k in metrics:
            assert _close(a[k], b[k], rel, abs_), f"{k} at step {a['step']}: {a[k]} vs {b[k]}"
    assert SUMMARY_KEYS <= set(ours.summary) and SUMMARY_KEYS <= set(hf.summary), "end-of-training summary"
    assert _close(ours.summary["train_loss"], hf.summary["train_loss"], rel, abs_), "train_loss"
    assert ours.summary["total_flos"] == pytest.approx(hf.summary["total_flos"], rel=1e-9), "total_flos"
    assert ours.summary["epoch"] == pytest.approx(hf.summary["epoch"], rel=1e-12), "summary epoch"
    assert ours.optimizer_steps == hf.optimizer_steps, "optimizer steps"
    assert ours.checkpoints == hf.checkpoints, "checkpoint folders left"
    assert ours.best == hf.best, "best checkpoint"
    assert ours.weights.keys() == hf.weights.keys()
    for k in ours.weights:
        torch.testing.assert_close(ours.weights[k], hf.weights[k], rtol=rel, atol=abs_, msg=f"final weight {k}")
