"""Running the engine in-process for the "every honoured field acts" table.

`outcome(tmp, settings)` trains a preset built from `settings` (field keys or `group.key`,
plus `task` / `options`) with the real `Trainer` and returns what it did: its events,
checkpoints, captured output, the trainer itself (the probe task's records live on its
model). Runs without hooks are cached for the session, so the many cases that compare
against the same default run train it once.

`changes(field, value, observe, base=…, expect=…)` is the usual case: the run with `base`
and the run with `base` plus `field = value` differ in `observe(outcome)`, and `expect(default,
changed)` says the difference is the one transformers' Trainer shows.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from trainer_fixtures import FakePreset, REGRESSION

torch.set_num_threads(1)

PROBE = str(Path(__file__).with_name("probe_task.py")) + ":build"
BASE = {"per_device_train_batch_size": 4, "max_steps": 4, "learning_rate": 0.01, "logging_steps": 1,
        "save_strategy": "no", "seed": 3}
CHAR_GPT = {"block_size": 8, "n_layer": 1, "n_head": 2, "n_embd": 8, "dropout": 0.0, "examples_per_epoch": 16,
            "val_fraction": 0.001}
TASKS = {"regression": ("regression", REGRESSION), "probe": (PROBE, {}), "char_gpt": ("char_gpt", CHAR_GPT),
         "modular": ("modular", {"modulus": 7, "n_layer": 1, "n_head": 2, "n_embd": 8})}


@dataclass
class Outcome:
    run_dir: Path
    code: int
    trainer: Any
    out: str
    error: str = ""
    since: int = 0  # the first line of metrics.jsonl this run wrote (a resumed run's segment)
    extra: dict = field(default_factory=dict)

    def events(self, kind: str | None = None) -> list[dict]:
        path = self.run_dir / "metrics.jsonl"
        lines = path.read_text().splitlines()[self.since:] if path.exists() else []
        return [e for e in map(json.loads, lines) if kind is None or e["kind"] == kind]

    def values(self, kind: str, key: str) -> list:
        return [e.get(key) for e in self.events(kind)]

    def checkpoints(self) -> list[str]:
        return sorted((p.name for p in self.run_dir.glob("checkpoint-*")), key=lambda n: int(n.split("-")[1]))

    @property
    def model(self):
        return self.trainer.raw_model if self.trainer is not None else None

    def seen(self, training: bool = True) -> list[dict]:
        return [s for s in self.model.seen if s["training"] == training]

    def order(self) -> list[int]:
        """The dataset indices the training forward passes saw, in order."""
        return [i for s in self.seen() for i in s["index"]]


_CACHE: dict[str, Outcome] = {}
_COUNTER = [0]


def preset_of(settings: dict):
    settings = dict(settings)
    task, options = TASKS[settings.pop("task", "regression")]
    options = {**options, **settings.pop("options", {})}
    return FakePreset(task, options, {**BASE, **settings})


def outcome(tmp: Path, settings: dict, *, before_train: Callable | None = None,
            resume_from: str | None = None, run_dir: Path | None = None, fresh: bool = False,
            preset: Any = None) -> Outcome:
    """Train `settings` (or `preset`) in-process (cached unless `fresh` or there is something
    special about the run: a hook, a resume, a given directory)."""
    from tuitrain.engine.trainer import Trainer
    from tuitrain.errors import TuitrainError

    key = json.dumps(settings, sort_keys=True, default=str)
    cacheable = before_train is None and resume_from is None and run_dir is None and not fresh and preset is None
    if cacheable and key in _CACHE:
        return _CACHE[key]
    _COUNTER[0] += 1
    run_dir = run_dir or tmp / f"run-{_COUNTER[0]}"
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_dir / "metrics.jsonl"
    since = len(metrics.read_text().splitlines()) if metrics.exists() else 0
    buffer = io.StringIO()
    trainer, code, error = None, None, ""
    with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
        try:
            trainer = Trainer(preset or preset_of(settings), run_dir, resume_from=resume_from)
        except TuitrainError as exc:
            code, error = 1, exc.one_line()
        if trainer is not None:
            try:
                if before_train is not None:
                    before_train(trainer)
                code = trainer.train()
            finally:
                trainer.close()
                # the engine's log level is the process's (one run per process); tests share one
                logging.getLogger("tuitrain").setLevel(logging.WARNING)
    result = Outcome(run_dir, code, trainer, buffer.getvalue(), error, since)
    if cacheable:
        _CACHE[key] = result
    return result


def failure(result: Outcome) -> str:
    """The one line a failed run recorded (its failed status, or the refusal at start)."""
    if result.error:
        return result.error
    statuses = [e for e in result.events("status") if e["state"] == "failed"]
    return statuses[-1]["error"] if statuses else ""


def changes(name: str, value: Any, observe: Callable[[Outcome], Any], *, base: dict | None = None,
            expect: Callable[[Any, Any], bool] | None = None) -> Callable[[Path], None]:
    """A case: setting `name = value` on top of `base` changes `observe`, as `expect` says."""
    key = name.rsplit(".", 1)[-1]

    def case(tmp: Path) -> None:
        settings = dict(base or {})
        default = observe(outcome(tmp, settings))
        changed = observe(outcome(tmp, {**settings, key: value}))
        assert default != changed, f"{name} = {value!r} changed nothing the engine did: {default!r}"
        if expect is not None:
            assert expect(default, changed), f"{name} = {value!r}: {default!r} -> {changed!r}"

    case.__doc__ = f"{name} = {value!r}"
    return case


def losses(result: Outcome) -> list[float]:
    assert result.code == 0, failure(result) or result.out[-2000:]
    return [e["loss"] for e in result.events("train")]


def lrs(result: Outcome) -> list[float]:
    assert result.code == 0, failure(result) or result.out[-2000:]
    return [round(e["learning_rate"], 10) for e in result.events("train")]


def registrar(cases: dict) -> Callable:
    """A decorator `@case("group.key")` that files a case function in `cases`."""
    def case(name: str):
        def register(fn):
            cases[name] = fn
            return fn
        return register
    return case


def ok(result: Outcome) -> Outcome:
    """The run, asserted to have finished (its failure otherwise)."""
    assert result.code == 0, failure(result) or result.out[-3000:]
    return result


def ddp_case(name: str) -> Callable[[Path], None]:
    """A case shown by the two-rank job of `ddp_fields`."""
    def run(tmp: Path) -> None:
        from ddp_fields import check

        check(name)
    return run
