"""Cases of the "every honoured field acts" table: [task], [core], [optimizer], [dataloader].

Each case sets one field and shows the engine doing what transformers' Trainer does with it
(see `field_harness`). Cases that need more than two runs are functions of their own.
"""

from __future__ import annotations

from pathlib import Path

import torch

from field_harness import changes, ddp_case, failure, losses, lrs, outcome, registrar

CASES: dict = {}
case = registrar(CASES)


def start(result, key: str):
    assert result.code == 0, failure(result) or result.out[-2000:]
    return result.events("start")[0][key]


def last_train(result, key: str):
    assert result.code == 0, failure(result) or result.out[-2000:]
    return result.events("train")[-1][key]


def kinds(result) -> list[str]:
    assert result.code == 0, failure(result) or result.out[-2000:]
    return [e["kind"] for e in result.events() if e["kind"] in ("train", "eval", "predict", "summary")]


# -- [task] -------------------------------------------------------------------------------------

@case("task.name")
def _task_name(tmp: Path) -> None:
    regression, probe = outcome(tmp, {}), outcome(tmp, {"task": "probe"})
    assert "net.0.weight" in regression.model.state_dict() and "lin.weight" in probe.model.state_dict()
    assert losses(regression) != losses(probe)


# -- [core] -------------------------------------------------------------------------------------

@case("core.output_dir")
def _output_dir(tmp: Path) -> None:
    # `tuitrain run` puts the run where output_dir says (HF's output_dir), else under the runs root.
    from field_harness import preset_of
    from tuitrain.runs.rundir import create_run_dir

    chosen = tmp / "chosen-dir"
    default = create_run_dir(preset_of({}), runs_root=tmp / "root")
    placed = create_run_dir(preset_of({"output_dir": str(chosen)}), runs_root=tmp / "root")
    assert default.parent == (tmp / "root").resolve() and placed == chosen.resolve()


@case("core.overwrite_output_dir")
def _overwrite(tmp: Path) -> None:
    import pytest

    from field_harness import preset_of
    from tuitrain.runs.rundir import RunDirError, create_run_dir

    used = tmp / "used"
    used.mkdir()
    (used / "old.txt").write_text("x")
    with pytest.raises(RunDirError, match="overwrite_output_dir"):
        create_run_dir(preset_of({"output_dir": str(used)}))
    assert create_run_dir(preset_of({"output_dir": str(used), "overwrite_output_dir": True})) == used.resolve()
    assert not (used / "old.txt").exists()


# do_train with do_predict: HF trains and predicts; without it, it only predicts.
CASES["core.do_train"] = changes("core.do_train", True, kinds, base={"do_predict": True},
                                 expect=lambda a, b: a == ["predict"] and b[0] == "train" and b[-1] == "predict")
# do_eval without an eval strategy: HF evaluates once after training.
CASES["core.do_eval"] = changes("core.do_eval", True, kinds, base={"do_train": True},
                                expect=lambda a, b: "eval" not in a and b[-1] == "eval")
CASES["core.do_predict"] = changes("core.do_predict", True, kinds, base={"do_train": True},
                                   expect=lambda a, b: "predict" not in a and b[-1] == "predict")
# the epoch's length in steps: ceil(38 train items / batch)
CASES["core.per_device_train_batch_size"] = changes(
    "core.per_device_train_batch_size", 13, lambda r: start(r, "max_steps"), base={"max_steps": -1,
                                                                                     "num_train_epochs": 1},
    expect=lambda a, b: (a, b) == (10, 3))


@case("core.per_device_eval_batch_size")
def _eval_batch(tmp: Path) -> None:
    base = {"task": "probe", "do_eval": True, "max_steps": 1}
    rows = [[s["rows"] for s in outcome(tmp, {**base, **extra}).seen(training=False)]
            for extra in ({}, {"per_device_eval_batch_size": 4})]
    assert rows == [[8, 2], [4, 4, 2]]


# two micro-batches per update: the epoch advances twice as fast per step
CASES["core.gradient_accumulation_steps"] = changes(
    "core.gradient_accumulation_steps", 2, lambda r: last_train(r, "epoch"), expect=lambda a, b: b == 2 * a)
CASES["core.num_train_epochs"] = changes("core.num_train_epochs", 2, lambda r: start(r, "max_steps"),
                                         base={"max_steps": -1, "num_train_epochs": 1},
                                         expect=lambda a, b: b == 2 * a)
CASES["core.max_steps"] = changes("core.max_steps", 7, lambda r: [e["step"] for e in r.events("train")],
                                  expect=lambda a, b: b == list(range(1, 8)))


@case("core.auto_find_batch_size")
def _auto_batch(tmp: Path) -> None:
    # the probe's forward "runs out of memory" on batches above 3: HF shrinks the batch and retries
    def oom_above_3(trainer):
        model, forward = trainer.raw_model, trainer.raw_model.forward

        def guarded(x, labels=None, **kw):
            if model.training and x.shape[0] > 3:
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return forward(x, labels, **kw)
        model.forward = guarded

    plain = outcome(tmp, {"task": "probe"}, before_train=oom_above_3)
    assert plain.code == 1 and "OutOfMemoryError" in failure(plain)
    # (the retry rebuilds the model from the task, so the guard goes with the first one: a
    # smaller batch is what the warning and the finished run show)
    auto = outcome(tmp, {"task": "probe", "auto_find_batch_size": True}, before_train=oom_above_3)
    assert auto.code == 0
    assert any("per_device_train_batch_size=3" in e["message"] for e in auto.events("warning"))


@case("core.resume_from_checkpoint")
def _resume_from(tmp: Path) -> None:
    first = outcome(tmp, {"save_strategy": "steps", "save_steps": 2}, run_dir=tmp / "source")
    assert first.code == 0
    fresh = outcome(tmp, {"max_steps": 6})
    cont = outcome(tmp, {"max_steps": 6, "resume_from_checkpoint": str(first.run_dir / "checkpoint-4")})
    assert [e["step"] for e in fresh.events("train")][0] == 1
    assert [e["step"] for e in cont.events("train")] == [5, 6] and cont.events("start")[0]["step"] == 4


CASES["core.average_tokens_across_devices"] = ddp_case("average_tokens_across_devices")


# -- [optimizer] ----------------------------------------------------------------------------------

CASES["optimizer.learning_rate"] = changes("optimizer.learning_rate", 0.02, lrs,
                                           expect=lambda a, b: all(y == 2 * x for x, y in zip(a, b)))
for _name, _value in (("weight_decay", 0.5), ("adam_beta1", 0.5), ("adam_beta2", 0.5), ("adam_epsilon", 0.3),
                      ("adam_bias_correction", False), ("max_grad_norm", 0.01), ("optim", "sgd")):
    CASES[f"optimizer.{_name}"] = changes(f"optimizer.{_name}", _value, losses,
                                          expect=lambda a, b: a[0] == b[0] and a[1:] != b[1:])
CASES["optimizer.optim_args"] = changes("optimizer.optim_args", "momentum=0.9", losses, base={"optim": "sgd"},
                                        expect=lambda a, b: a[:2] == b[:2] and a[2:] != b[2:])
CASES["optimizer.lr_scheduler_type"] = changes("optimizer.lr_scheduler_type", "constant", lrs,
                                               expect=lambda a, b: b == [0.01] * 4 and a == [0.01, 0.0075, 0.005, 0.0025])
CASES["optimizer.lr_scheduler_kwargs"] = changes(
    "optimizer.lr_scheduler_kwargs", {"power": 2.0}, lrs, base={"lr_scheduler_type": "polynomial"},
    expect=lambda a, b: a[0] == b[0] and all(y < x for x, y in zip(a[1:], b[1:])))
CASES["optimizer.warmup_steps"] = changes("optimizer.warmup_steps", 2, lrs,
                                          expect=lambda a, b: b[:3] == [0.0, 0.005, 0.01])
CASES["optimizer.warmup_ratio"] = changes("optimizer.warmup_ratio", 0.5, lrs,
                                          expect=lambda a, b: b[:3] == [0.0, 0.005, 0.01])


@case("optimizer.optim_target_modules")
def _target_modules(tmp: Path) -> None:
    from fake_optimizers import galore_groups

    # GaLore's low-rank group holds the targeted nn.Linear weights (transformers' rule)
    assert galore_groups(tmp, ["net.0"]) == ["net.0.weight"]
    assert galore_groups(tmp, ["net.2", "net.4"]) == ["net.2.weight", "net.4.weight"]


# -- [dataloader] ---------------------------------------------------------------------------------

def _pids(result) -> set[int]:
    return {p for s in result.seen() for p in s["pid"]}


@case("dataloader.dataloader_num_workers")
def _workers(tmp: Path) -> None:
    import os

    inline, workers = outcome(tmp, {"task": "probe"}), outcome(tmp, {"task": "probe", "dataloader_num_workers": 1})
    assert _pids(inline) == {os.getpid()} and os.getpid() not in _pids(workers)
    assert inline.order() == workers.order()  # the same data, loaded elsewhere


def _loader(settings: dict, device: str = "cpu"):
    from field_harness import preset_of
    from tuitrain.engine.data import build_train_loader
    from tuitrain.engine.distributed import DistContext
    from tuitrain.engine.tasks import build_task

    preset = preset_of({"task": "probe", **settings})
    ctx = DistContext(device=torch.device(device, 0) if device == "cuda" else torch.device(device))
    return build_train_loader(build_task(preset.task, preset.args), preset.args, ctx)


@case("dataloader.dataloader_pin_memory")
def _pin(tmp: Path) -> None:
    # pinned host memory only means something for copies to a GPU: the loader the engine builds for
    # a CUDA device pins, unless this is false (on a CPU it never pins: HF's accelerate does the same)
    assert _loader({}, "cuda").pin_memory is True
    assert _loader({"dataloader_pin_memory": False}, "cuda").pin_memory is False
    assert _loader({}, "cpu").pin_memory is False


CASES["dataloader.dataloader_drop_last"] = changes(
    "dataloader.dataloader_drop_last", True, lambda r: start(r, "max_steps"),
    base={"max_steps": -1, "num_train_epochs": 1, "per_device_train_batch_size": 5}, expect=lambda a, b: (a, b) == (8, 7))


@case("dataloader.dataloader_persistent_workers")
def _persistent(tmp: Path) -> None:
    base = {"task": "probe", "dataloader_num_workers": 1, "max_steps": -1, "num_train_epochs": 2,
            "per_device_train_batch_size": 12}
    by_epoch = []
    for extra in ({}, {"dataloader_persistent_workers": True}):
        seen = outcome(tmp, {**base, **extra}).seen()
        by_epoch.append([tuple(s["pid"]) for s in seen])
    fresh, kept = by_epoch
    assert len(fresh) == len(kept) == 4
    assert fresh[0] != fresh[2], "without persistent workers each epoch starts its own worker"
    assert kept[0] == kept[2], "persistent workers live on into the next epoch (HF keeps one loader)"


@case("dataloader.dataloader_prefetch_factor")
def _prefetch(tmp: Path) -> None:
    base = {"dataloader_num_workers": 1}
    assert _loader(base).prefetch_factor == 2 and _loader({**base, "dataloader_prefetch_factor": 5}).prefetch_factor == 5


@case("dataloader.dataloader_multiprocessing_context")
def _mp_context(tmp: Path) -> None:
    base = {"dataloader_num_workers": 1}
    assert _loader(base).multiprocessing_context is None
    spawn = _loader({**base, "dataloader_multiprocessing_context": "spawn"}).multiprocessing_context
    assert spawn is not None and spawn.get_start_method() == "spawn"


@case("dataloader.remove_unused_columns")
def _remove_columns(tmp: Path) -> None:
    # a forward without **kwargs: HF drops the items' `index` and `pid`; without the removal they
    # reach the forward, which refuses them
    base = {"task": "probe", "options": {"strict": True}}
    assert outcome(tmp, base).code == 0
    kept = outcome(tmp, {**base, "remove_unused_columns": False})
    assert kept.code == 1 and "unexpected keyword argument" in failure(kept)


CASES["dataloader.label_names"] = changes(
    "dataloader.label_names", ["target"], lambda r: sorted(k for e in r.events("eval") for k in e if k.endswith("_loss")),
    base={"task": "probe", "options": {"label_key": "target"}, "eval_strategy": "steps", "eval_steps": 2,
          "prediction_loss_only": True},
    expect=lambda a, b: a == [] and b == ["eval_loss", "eval_loss"])


def _order_case(name: str, value, base: dict | None = None, expect=None):
    settings = {"task": "probe", "options": {"varlen": True}, "max_steps": 3, **(base or {})}
    return changes(name, value, lambda r: r.order(), base=settings, expect=expect)


def _lengths(order: list[int]) -> list[int]:
    return [1 + (i * 7) % 11 for i in order]


def _grouped(a, b) -> bool:
    # the longest example first, then megabatches sorted longest first (HF's length grouping)
    return _lengths(b)[0] == 11 and _lengths(b)[:4] == sorted(_lengths(b)[:4], reverse=True)


CASES["dataloader.group_by_length"] = _order_case("dataloader.group_by_length", True, expect=_grouped)
CASES["dataloader.sortish_sampler"] = _order_case("dataloader.sortish_sampler", True, expect=_grouped)
CASES["dataloader.train_sampling_strategy"] = _order_case(
    "dataloader.train_sampling_strategy", "sequential", expect=lambda a, b: b == list(range(12)))
CASES["dataloader.length_column_name"] = _order_case(
    "dataloader.length_column_name", "len2", base={"group_by_length": True},
    expect=lambda a, b: 12 - _lengths(b)[0] == 11)  # grouped by len2, the reverse of input_ids' length
