"""`tuitrain resume --set`: every field a resume honours takes effect after the resume; every
other field is refused in one line before anything changes (README, "Guarantees").

The classification is one table, `tuitrain.config.resume_rules`, read by the engine, by
`tuitrain resume` and here. Each run below trains steps 1-2 to checkpoint-2 in a run directory
made as `tuitrain run` makes it, then goes through `tuitrain.runs.launch.resume` itself
(its state checks, its choice of checkpoint, its check and rewrite of the run's preset and
the engine command it builds); only the detached spawn is replaced by the same trainer run
in this process, so each case can look at what the resumed segment did.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from field_harness import PROBE, Outcome, failure, outcome, preset_of
from tuitrain.config import schema
from tuitrain.config.resume_rules import HONOURED_ON_RESUME, honoured_on_resume
from tuitrain.config.writer import toml_value

FIRST = {"max_steps": 2, "save_strategy": "steps", "save_steps": 2}
_TEMPLATES: dict[str, Path] = {}


def _first_segment(tmp: Path, base: dict) -> Path:
    """A finished run of `base` that saved checkpoint-2 (trained once per base)."""
    from tuitrain.runs.rundir import create_run_dir, update_run_json

    key = json.dumps(base, sort_keys=True)
    if key not in _TEMPLATES:
        run_dir = create_run_dir(preset_of({**base, **FIRST}), output_dir=tmp / f"first-{len(_TEMPLATES)}")
        result = outcome(tmp, {}, preset=preset_of({**base, **FIRST}), run_dir=run_dir)
        assert result.code == 0 and (run_dir / "checkpoint-2").is_dir(), failure(result) or result.out[-2000:]
        update_run_json(run_dir, state="finished", exit_code=0, started=1.0, ended=2.0, pid=None)
        _TEMPLATES[key] = run_dir
    return _TEMPLATES[key]


def overrides(first: dict, target: dict) -> list[str]:
    """`--set` arguments that turn the first segment's preset into `target`'s."""
    old, new = preset_of(first).values(), preset_of(target).values()
    return [f"{name}={toml_value(new[name])}" for name in new if new[name] != old.get(name) and new[name] is not None]


def resumed(tmp: Path, base: dict, change: dict, before_train=None, monkeypatch=None) -> Outcome:
    """`tuitrain resume RUN --set …` of a copy of `base`'s first segment, to `base` + `change`."""
    from tuitrain.runs import launch

    template = _first_segment(tmp, base)
    run_dir = tmp / f"resumed-{len(list(tmp.glob('resumed-*')))}"
    shutil.copytree(template, run_dir, ignore=shutil.ignore_patterns(".owner.lock", ".run.lock"))
    ran: list[Outcome] = []

    def in_process(run_dir_, argv, env=None, lock=None):  # the spawn: the same trainer, here
        lock.release()
        resume_from = argv[argv.index("--resume-from") + 1]
        from tuitrain.config import load_preset

        ran.append(outcome(tmp, {}, preset=load_preset(Path(run_dir_) / "preset.toml"), run_dir=Path(run_dir_),
                           resume_from=resume_from, before_train=before_train))
        return 0

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(launch, "start_supervised", in_process)
        launch.resume(run_dir, overrides=overrides({**base, **FIRST}, {**base, **change}))
    (result,) = ran
    return result


def ok(result: Outcome) -> Outcome:
    assert result.code == 0, failure(result) or result.out[-3000:]
    return result


def resumes(key: str, value, observe, base: dict | None = None, before_train=None):
    """A case: the resumed segment with `key = value` differs from the plain resume in `observe`."""
    def run(tmp: Path) -> None:
        settings = dict(base or {})
        plain = observe(resumed(tmp, settings, {}, before_train))
        changed = observe(resumed(tmp, settings, {key: value}, before_train))
        assert plain != changed, f"{key} = {value!r} changed nothing after the resume: {plain!r}"
    return run


def kinds(r):
    return [e["kind"] for e in ok(r).events() if e["kind"] in ("train", "eval", "predict")]


def steps(kind: str):
    return lambda r: [e["step"] for e in ok(r).events(kind)]


def rank1(check):
    """What a rank-1 process of the resumed run would do (the engine's own predicates)."""
    from tuitrain.engine.distributed import DistContext

    return lambda r: check(ok(r).trainer.args, DistContext(rank=1, local_rank=0, world_size=2, is_main=False))


def loader(attr: str):
    def observe(r):
        from tuitrain.engine.data import build_train_loader
        from tuitrain.engine.distributed import DistContext

        ctx = DistContext(device=torch.device("cuda", 0))
        return getattr(build_train_loader(ok(r).trainer.bundle, r.trainer.args, ctx), attr)
    return observe


def checkpoints_after(r):
    return [c for c in ok(r).checkpoints() if c != "checkpoint-2"]


def samples(r):
    return [e["text"] for e in ok(r).events("sample")]


def tracked(install, field: str):
    """A case for a tracker or Hub field: what the fake package received after the resume."""
    def run(tmp: Path, key: str, value, base: dict) -> None:
        got = []
        for change in ({}, {key: value}):
            with pytest.MonkeyPatch.context() as mp:
                rec = install(mp)
                ok(resumed(tmp, base, change))
            got.append(repr(rec.calls if field == "calls" else [c for c in rec.calls if c[0] == field]))
        assert got[0] != got[1], f"{key} = {value!r} changed nothing after the resume"
    return run


EVALS = {"eval_strategy": "steps", "eval_steps": 1}
STOPPING = {**EVALS, "max_steps": 8, "metric_for_best_model": "loss"}
PROBE_EVAL = {"task": "probe", **EVALS, "eval_steps": 2, "per_device_eval_batch_size": 4}
SAMPLES = {"task": "char_gpt", "sample_every": 1, "sample_max_new_tokens": 12, "seed": 5}
HUB = {"push_to_hub": True, "save_strategy": "steps", "save_steps": 1}
MEM = "precision.skip_memory_metrics"


def _metric_calls(r):
    return [{k: (v if not hasattr(v, "__len__") else len(v)) for k, v in c.items()} for c in ok(r).model.metric_calls]


def _empty_cache_record(trainer):
    trainer._empty_cache = lambda: trainer.extra_emptied.append(trainer.state.global_step)
    trainer.extra_emptied = []


def _fake(name):
    import fake_integrations

    return getattr(fake_integrations, f"install_{name}")


CASES = {
    "max_steps": resumes("max_steps", 6, steps("train")),
    "num_train_epochs": resumes("num_train_epochs", 2, lambda r: ok(r).events("start")[0]["max_steps"],
                                base={"max_steps": -1, "num_train_epochs": 1, "per_device_train_batch_size": 8}),
    "do_train": resumes("do_train", False, kinds, base={"do_train": True, "do_predict": True}),
    "do_eval": resumes("do_eval", True, kinds),
    "do_predict": resumes("do_predict", True, kinds),
    "logging_strategy": resumes("logging_strategy", "epoch", steps("train"),
                                base={"max_steps": -1, "num_train_epochs": 2, "per_device_train_batch_size": 13}),
    "logging_steps": resumes("logging_steps", 2, steps("train")),
    "logging_nan_inf_filter": resumes("logging_nan_inf_filter", False,
                                      lambda r: [e["loss"] is None for e in ok(r).events("train")],
                                      base={"task": "probe", "options": {"nan_steps": [1]}}),
    "log_level": resumes("log_level", "info", lambda r: "***** Running training *****" in ok(r).out),
    "log_level_replica": resumes("log_level_replica", "info", rank1(lambda a, c: __import__(
        "tuitrain.engine.logs", fromlist=["x"]).process_log_level(a, c)), base={"log_on_each_node": False}),
    "log_on_each_node": resumes("log_on_each_node", False, rank1(lambda a, c: __import__(
        "tuitrain.engine.logs", fromlist=["x"]).should_log(a, c))),
    "eval_strategy": resumes("eval_strategy", "steps", steps("eval"), base={"eval_steps": 1}),
    "eval_steps": resumes("eval_steps", 2, steps("eval"), base={"eval_strategy": "steps"}),
    "eval_delay": resumes("eval_delay", 4, steps("eval"), base=EVALS),
    "per_device_eval_batch_size": resumes("per_device_eval_batch_size", 4,
                                          lambda r: [s["rows"] for s in ok(r).seen(training=False)],
                                          base={"task": "probe", **EVALS, "eval_steps": 2}),
    "save_strategy": resumes("save_strategy", "steps", checkpoints_after, base={"save_steps": 1}),
    "save_steps": resumes("save_steps", 1, checkpoints_after, base={"save_strategy": "steps"}),
    "save_total_limit": resumes("save_total_limit", 1, lambda r: ok(r).checkpoints(),
                                base={"save_strategy": "steps", "save_steps": 1}),
    "save_only_model": resumes("save_only_model", True,
                               lambda r: sorted(p.name for p in (ok(r).run_dir / "checkpoint-4").iterdir()),
                               base={"save_strategy": "steps", "save_steps": 2}),
    "save_on_each_node": resumes("save_on_each_node", True, rank1(lambda a, c: __import__(
        "tuitrain.engine.distributed", fromlist=["x"]).saves_checkpoints(a, c))),
    "load_best_model_at_end": resumes("load_best_model_at_end", True, lambda r: "loaded the best model" in ok(r).out,
                                      base={**EVALS, "save_strategy": "steps", "save_steps": 1,
                                            "metric_for_best_model": "loss"}),
    "early_stopping_patience": resumes("early_stopping_patience", 2, steps("train"),
                                       base={**STOPPING, "greater_is_better": True}),
    "early_stopping_threshold": resumes("early_stopping_threshold", 10.0, steps("train"),
                                        base={**STOPPING, "early_stopping_patience": 2}),
    "ignore_data_skip": resumes("ignore_data_skip", True, lambda r: ok(r).order(), base={"task": "probe"}),
    "restore_callback_states_from_checkpoint": resumes(
        "restore_callback_states_from_checkpoint", True, steps("train"),
        base={**STOPPING, "greater_is_better": True, "early_stopping_patience": 3}),
    "dataloader_num_workers": resumes("dataloader_num_workers", 1,
                                      lambda r: sorted({p for s in ok(r).seen() for p in s["pid"]}),
                                      base={"task": "probe"}),
    "dataloader_pin_memory": resumes("dataloader_pin_memory", False, loader("pin_memory"), base={"task": "probe"}),
    "dataloader_persistent_workers": resumes(
        "dataloader_persistent_workers", True, lambda r: [tuple(s["pid"]) for s in ok(r).seen()][::2],
        base={"task": "probe", "dataloader_num_workers": 1, "max_steps": -1, "num_train_epochs": 3,
              "per_device_train_batch_size": 12}),
    "dataloader_prefetch_factor": resumes("dataloader_prefetch_factor", 5, loader("prefetch_factor"),
                                          base={"task": "probe", "dataloader_num_workers": 1}),
    "dataloader_multiprocessing_context": resumes(
        "dataloader_multiprocessing_context", "spawn", lambda r: repr(loader("multiprocessing_context")(r)),
        base={"dataloader_num_workers": 1}),  # (a spawned worker cannot import a plug-in loaded by path)
    "prediction_loss_only": resumes("prediction_loss_only", True,
                                    lambda r: sorted({k for e in ok(r).events("eval") for k in e}),
                                    base={**EVALS, "eval_steps": 2}),
    "include_inputs_for_metrics": resumes("include_inputs_for_metrics", True,
                                          lambda r: [e["eval_has_inputs"] for e in ok(r).events("eval")],
                                          base=PROBE_EVAL),
    "include_for_metrics": resumes("include_for_metrics", ["loss"], _metric_calls, base=PROBE_EVAL),
    "eval_do_concat_batches": resumes("eval_do_concat_batches", False,
                                      lambda r: [type(c["predictions"]).__name__ for c in ok(r).model.metric_calls],
                                      base=PROBE_EVAL),
    "batch_eval_metrics": resumes("batch_eval_metrics", True, _metric_calls, base=PROBE_EVAL),
    "eval_accumulation_steps": None,  # below: the device cache emptied as HF does
    "predict_with_generate": resumes("predict_with_generate", True, steps("sample"),
                                     base={"task": "char_gpt", **EVALS, "eval_steps": 2}),
    "generation_max_length": resumes("generation_max_length", 30, lambda r: [len(t) for t in samples(r)], base=SAMPLES),
    "generation_num_beams": resumes("generation_num_beams", 3, samples, base=SAMPLES),
    "generation_config": None,  # below: a file
    "fp16_full_eval": resumes("fp16_full_eval", True, lambda r: failure(r) or "trained",
                              base={"do_eval": True, "do_train": True}),
    "bf16_full_eval": resumes("bf16_full_eval", True, lambda r: [e["eval_loss"] for e in ok(r).events("eval")],
                              base={**EVALS, "eval_steps": 2}),
    "sample_every": resumes("sample_every", 2, steps("sample"), base=SAMPLES),
    "sample_max_new_tokens": resumes("sample_max_new_tokens", 20, lambda r: [len(t) for t in samples(r)], base=SAMPLES),
    "sample_temperature": resumes("sample_temperature", 1e-6, samples, base=SAMPLES),
    "sample_top_k": resumes("sample_top_k", 1, samples, base=SAMPLES),
    "sample_prompt": resumes("sample_prompt", "Zq", samples, base=SAMPLES),
    "skip_memory_metrics": resumes("skip_memory_metrics", False,
                                   lambda r: sorted(k for k in ok(r).events("summary")[0] if "_mem_" in k)),
    "profile": resumes("profile", True, lambda r: (ok(r).run_dir / "profile").is_dir()),
    "torch_compile": None,  # below
    "torch_compile_backend": None, "torch_compile_mode": None,  # below: torch.compile's calls
    "torch_empty_cache_steps": resumes("torch_empty_cache_steps", 1, lambda r: ok(r).trainer.extra_emptied,
                                       before_train=_empty_cache_record),
    "activation_checkpointing": resumes("activation_checkpointing", True, lambda r: ok(r).model.enabled,
                                        base={"task": "probe", "options": {"checkpointing": True}}),
    "activation_checkpointing_kwargs": resumes(
        "activation_checkpointing_kwargs", {"every_n_layers": 2}, lambda r: ok(r).model.enabled,
        base={"task": "probe", "options": {"checkpointing": True}, "activation_checkpointing": True}),
    "ddp_timeout": resumes("ddp_timeout", 60, lambda r: __import__(
        "tuitrain.engine.distributed", fromlist=["x"]).process_group_options(ok(r).trainer.args)),
    "logging_dir": None, "run_name": None, "report_to": None, "push_to_hub": None, "hub_model_id": None,
    "hub_strategy": None, "hub_token": None, "hub_private_repo": None, "hub_always_push": None,
}


def _generation_config(tmp: Path) -> None:
    config = tmp / "generation_config.json"
    config.write_text(json.dumps({"max_new_tokens": 5, "do_sample": False}))
    plain = [len(t) for t in samples(resumed(tmp, SAMPLES, {}))]
    configured = [len(t) for t in samples(resumed(tmp, SAMPLES, {"generation_config": str(config)}))]
    assert plain != configured and set(configured) == {len(samples(resumed(tmp, SAMPLES, {}))[0]) - 7}


def _eval_accumulation(tmp: Path) -> None:
    emptied = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.cuda, "empty_cache", lambda: emptied.append(1))
        ok(resumed(tmp, PROBE_EVAL, {"eval_accumulation_steps": 1}))
    assert emptied


CASES["generation_config"] = _generation_config
CASES["eval_accumulation_steps"] = _eval_accumulation
def _compiles(key: str, value):
    def run(tmp: Path) -> None:
        calls = []
        real = torch.compile

        def recording(model, **kwargs):
            calls.append(kwargs)
            return real(model, backend="eager")

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(torch, "compile", recording)
            # compiling turns dataloader_drop_last on unless the preset sets it (a changed batch
            # list, which a resume refuses): the run's value is kept by setting it
            keep = {"dataloader_drop_last": False}
            ok(resumed(tmp, keep, {}))
            assert calls == []
            ok(resumed(tmp, keep, {key: value}))
        torch._dynamo.reset()
        assert calls and calls[0].get(key.replace("torch_compile_", ""), True) == value
    return run


CASES["torch_compile"] = _compiles("torch_compile", True)
CASES["torch_compile_backend"] = _compiles("torch_compile_backend", "eager")
CASES["torch_compile_mode"] = _compiles("torch_compile_mode", "max-autotune-no-cudagraphs")
_TRACKED = {"logging_dir": ("tensorboard", "tb", {"report_to": ["tensorboard"]}, "init"),
            "run_name": ("wandb", "other", {"report_to": ["wandb"]}, "init"),
            "report_to": ("wandb", ["wandb"], {}, "calls"),
            "push_to_hub": ("hub", True, {"save_strategy": "steps", "save_steps": 1}, "calls"),
            "hub_model_id": ("hub", "org/model", HUB, "upload_folder"),
            "hub_strategy": ("hub", "end", HUB, "upload_folder"),
            "hub_token": ("hub", "hf_test", HUB, "upload_folder"),
            "hub_private_repo": ("hub", True, HUB, "create_repo"),
            "hub_always_push": ("hub", True, {**HUB, "hub_strategy": "end"}, "calls")}
for _key, (_pkg, _value, _base, _what) in _TRACKED.items():
    CASES[_key] = (lambda k, p, v, b, w: lambda tmp: tracked(_fake(p), w)(tmp, k, v, b))(_key, _pkg, _value, _base, _what)
LAUNCH = [f.key for f in schema.group_fields("launch")]


def _launch_case(tmp: Path) -> None:
    # launch settings shape the command `tuitrain resume` spawns
    from tuitrain.runs import launch

    template = _first_segment(tmp, {})
    commands = []
    for change in ([], ["launch.launcher=\"torchrun\"", "launch.nproc_per_node=2", "launch.max_restarts=2"]):
        run_dir = tmp / f"launch-{len(commands)}"
        shutil.copytree(template, run_dir, ignore=shutil.ignore_patterns(".owner.lock", ".run.lock"))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(launch, "start_supervised", lambda d, argv, env=None, lock=None: (lock.release(),
                                                                                         commands.append(argv))[1])
            launch.resume(run_dir, overrides=change)
    assert commands[0][1:3] == ["-m", "tuitrain.engine"]
    assert "--nproc-per-node=2" in commands[1] and "--max-restarts=2" in commands[1]


HONOURED = sorted(name for name in schema.FIELDS if honoured_on_resume(name) and not name.startswith("launch."))


def test_the_table_classifies_real_fields_and_every_honoured_one_has_a_case():
    keys = {f.key for f in schema.FIELDS.values()}
    assert HONOURED_ON_RESUME <= keys, sorted(HONOURED_ON_RESUME - keys)
    assert {n.split(".")[1] for n in HONOURED} == set(CASES), sorted({n.split(".")[1] for n in HONOURED} ^ set(CASES))


@pytest.mark.parametrize("name", HONOURED)
def test_a_field_changed_on_resume_takes_effect(name, tmp_path):
    CASES[name.split(".")[1]](tmp_path)


def test_launch_settings_changed_on_resume_take_effect(tmp_path):
    _launch_case(tmp_path)


# -- refused -----------------------------------------------------------------------------------------

# A valid value other than the run's, for fields where "the opposite" is not obvious.
OTHER = {
    "task.name": f'"{PROBE}"', "logging.metric_for_best_model": '"loss"', "core.resume_from_checkpoint": '"/nowhere/checkpoint-1"', "core.output_dir": '"/tmp/x"',
    "optimizer.lr_scheduler_kwargs": None, "optimizer.optim_args": '"momentum=0.9"',
    "optimizer.optim_target_modules": '["net.0"]', "dataloader.label_names": '["target"]',
    "dataloader.length_column_name": '"len2"', "distributed.fsdp": '"full_shard"',
    "distributed.fsdp_config": "{min_num_params = 10}", "distributed.deepspeed": '"ds.json"',
    "distributed.sharded_ddp": '"simple"', "distributed.mp_parameters": '"x"', "distributed.tpu_num_cores": "8",
    "distributed.ddp_backend": '"gloo"', "distributed.xpu_backend": '"gloo"', "precision.fp16_opt_level": '"O2"',
    "precision.optim_target_precision": '"fp8"', "evaluation.past_index": "0", "reproducibility.data_seed": "9",
    "reproducibility.dataloader_seed": "9", "reproducibility.seed": "9",
}


def other_value(f: schema.Field, current) -> str:
    """`--set` text of a valid value that differs from `current`."""
    if f.name in OTHER:
        return OTHER[f.name]
    if f.type == schema.BOOL:
        return "false" if current else "true"
    if f.choices and f.type != schema.STR_LIST:
        return toml_value(next(c for c in f.choices if c != current))
    if f.type == schema.INT:
        return str((current or 0) + 1)
    if f.type == schema.FLOAT:
        return repr(round((current or 0.0) / 2 if current else 0.1, 6))
    raise AssertionError(f"no other value for {f.name}: add it to OTHER")


REFUSED = sorted(n for n, f in schema.FIELDS.items() if not honoured_on_resume(n) and n != "optimizer.lr_scheduler_kwargs")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    return _first_segment(tmp_path_factory.mktemp("refused"), {})


@pytest.mark.parametrize("name", REFUSED + ["task.options.hidden", "optimizer.lr_scheduler_kwargs"])
def test_every_other_field_is_refused_in_one_line_before_anything_changes(name, finished_run, tmp_path, capsys):
    from tuitrain.cli import main
    from tuitrain.runs import launch

    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir, ignore=shutil.ignore_patterns(".owner.lock", ".run.lock"))
    current = preset_of({**FIRST}).values()
    if name == "task.options.hidden":
        sets = ["task.options.hidden=9"]
    elif name == "optimizer.adam_bias_correction":  # false has no fused kernel: with the loop AdamW
        sets = ['optimizer.optim="adamw_torch"', "optimizer.adam_bias_correction=false"]
    elif name == "optimizer.lr_scheduler_kwargs":
        sets = ['optimizer.lr_scheduler_type="polynomial"', "optimizer.lr_scheduler_kwargs={power = 2.0}"]
    else:
        sets = [f"{name}={other_value(schema.FIELDS[name], current[name])}"]
    def files():  # (the owner lock a launcher takes is bookkeeping)
        return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file() and not p.name.endswith(".lock")}

    before = files()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(launch, "start_supervised", lambda *a, **kw: pytest.fail("a refused resume started a trainer"))
        code = main(["resume", str(run_dir), *[arg for s in sets for arg in ("--set", s)]])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert err.startswith("tuitrain: checkpoint-2: cannot resume with changed ") and name in err, err
    assert files() == before  # preset.toml and run.json untouched, no preset.prev-N.toml
