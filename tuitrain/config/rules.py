"""Cross-field rules (HF's `TrainingArguments.__post_init__` and ours) and resolved defaults."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tuitrain.config import schedules, schema
from tuitrain.config.args import TrainingArgs
from tuitrain.config.integrations import check_integrations, installed
from tuitrain.config.optimizers import OPTIMIZERS, unread_optim_args
from tuitrain.config.problems import NOTICE
from tuitrain.config.steps import num_warmup_steps
from tuitrain.config.tasks import BUILTIN_TASKS
from tuitrain.config.values import describe
from tuitrain.errors import TuitrainError

_STEP_FIELDS = ("logging_steps", "save_steps", "eval_steps", "warmup_steps")


def warmup_problem(warmup_steps: int, total_steps: int) -> str | None:
    """What is wrong with a warmup of `warmup_steps` in a run of `total_steps` (None: nothing).

    HF's update k runs at λ(k−1), so the peak comes at update warmup_steps + 1: a warmup as
    long as the run never reaches it. A notice (HF runs it, and a short trial run with a
    lowered max_steps is legitimate), given wherever the run's length is known: here when
    max_steps is set, and by the editor and `tuitrain schedule`, which also count an
    epoch-based run's steps.
    """
    if total_steps > 0 and warmup_steps >= total_steps:
        return (f"warmup lasts {warmup_steps} steps and the run {total_steps}: "
                "the learning rate never reaches its peak")
    return None


def warmup_suggestion(key: str, total_steps: int) -> str:
    """A warmup that fits a run of `total_steps`, as `key` would be written."""
    return "e.g. warmup_ratio = 0.1" if key == "warmup_ratio" else f"e.g. warmup_steps = {max(1, total_steps // 10)}"


def missing_packages(optim: str) -> list[str]:
    """Import names an optimizer family needs that are not installed."""
    info = OPTIMIZERS.get(optim)
    return [name for name in info.imports if not installed(name)] if info else []


def resolve(data: dict, col, label: str):
    """Check `data` (parsed TOML + overrides) and build the `Preset`; problems go to `col`."""
    from tuitrain.config.preset import Preset, check_structure, check_task

    values, given, task_table, _ = check_structure(data, col)
    task = check_task(task_table, col)
    v: dict[str, Any] = {f.key: f.default for name, f in schema.FIELDS.items()}
    v.update({name.split(".", 1)[1]: value for name, value in values.items()})
    where = {name.split(".", 1)[1]: tuple(name.split(".")) for name in schema.FIELDS}

    def err(key: str, message: str, suggestion: str = "", severity: str = "error") -> None:
        col.add(where[key], message, suggestion, severity, name=".".join(where[key]))

    given_keys = {n.split(".", 1)[1] for n in given}
    _hf_rules(v, given_keys, err)
    _optimizer_rules(v, given_keys, err)
    _launch_rules(v, err)
    _fsdp_rules(v, err)
    check_integrations(v, given_keys, err)
    _task_rules(task, col)
    info = BUILTIN_TASKS.get(task.name)
    if v["sample_every"] and info is not None and not info.samples:
        err("sample_every", f"task {task.name!r} cannot generate text samples (it has no decoder); "
            "no samples will be written", "set sample_every = 0, or train a task that samples "
            "(" + ", ".join(name for name, t in BUILTIN_TASKS.items() if t.samples) + ")", NOTICE)
    if v["max_steps"] > 0:
        problem = warmup_problem(num_warmup_steps(v["max_steps"], v["warmup_steps"], v["warmup_ratio"]), v["max_steps"])
        if problem:
            key = "warmup_steps" if v["warmup_steps"] else "warmup_ratio"
            err(key, problem, warmup_suggestion(key, v["max_steps"]), NOTICE)
    for name in given:
        f = schema.FIELDS[name]
        if not f.honoured and v[f.key] != f.default and v[f.key] not in ([], ["none"], ""):
            err(f.key, f"not honoured by tuitrain's engine: {f.honoured_note}", "", NOTICE)
    hf = {f.key: v[f.key] for f in schema.FIELDS.values() if f.group in schema.HF_GROUPS}
    launch = {f.key: v[f.key] for f in schema.group_fields("launch")}
    return Preset(label, TrainingArgs(**hf), task, SimpleNamespace(**launch), given=frozenset(given))


def _hf_rules(v: dict, given: set, err) -> None:
    # Old spellings fold into transformers 5's.
    if v["group_by_length"]:
        v["train_sampling_strategy"] = "group_by_length"
    if v["include_inputs_for_metrics"] and "inputs" not in v["include_for_metrics"]:
        v["include_for_metrics"] = [*v["include_for_metrics"], "inputs"]
    for key in _STEP_FIELDS:
        value = v[key]
        if value is not None and value > 1 and value != int(value):
            err(key, f"{describe(value)} must be a whole number when > 1",
                f"values < 1 are ratios of the total steps; write {int(value)} or {round(value)}")
        elif value is not None and value > 1:
            v[key] = int(value)
    if v["logging_strategy"] == "steps" and v["logging_steps"] == 0:
        err("logging_steps", "must be non-zero when logging_strategy = \"steps\"", "e.g. logging_steps = 10")
    if v["eval_strategy"] != "no":
        v["do_eval"] = True
    if v["eval_strategy"] == "steps" and not v["eval_steps"]:
        if v["logging_steps"] > 0:
            v["eval_steps"] = v["logging_steps"]
        else:
            err("eval_strategy", "\"steps\" needs a non-zero eval_steps or logging_steps", "set eval_steps")
    if v["fp16"] and v["bf16"]:
        err("bf16", "fp16 and bf16 cannot both be true", "keep one; bf16 is the safer choice on Ampere+")
    if v["fp16_full_eval"] and v["bf16_full_eval"]:
        err("bf16_full_eval", "fp16_full_eval and bf16_full_eval cannot both be true", "keep one")
    _best_model_rules(v, given, err)
    if v["warmup_steps"] and v["warmup_ratio"]:
        err("warmup_ratio", f"ignored: warmup_steps = {describe(v['warmup_steps'])} wins when both are set",
            "remove one of them", NOTICE)
    if v["torch_compile_mode"] is not None or v["torch_compile_backend"] is not None:
        v["torch_compile"] = True
    if v["torch_compile"] and v["torch_compile_backend"] is None:
        v["torch_compile_backend"] = "inductor"
    if v["torch_compile"] and "dataloader_drop_last" not in given:
        v["dataloader_drop_last"] = True  # a partial last batch compiles the model again, for one step
    if v["max_steps"] <= 0 and v["num_train_epochs"] == 0:
        err("num_train_epochs", "0 epochs and no max_steps: nothing to train", "set num_train_epochs or max_steps")
    if v["dataloader_num_workers"] == 0:
        if v["dataloader_prefetch_factor"] is not None:
            err("dataloader_prefetch_factor", "needs dataloader_num_workers > 0",
                "set dataloader_num_workers or remove dataloader_prefetch_factor")
        if v["dataloader_persistent_workers"]:
            err("dataloader_persistent_workers", "needs dataloader_num_workers > 0",
                "set dataloader_num_workers or set this to false")


def _best_model_rules(v: dict, given: set, err) -> None:
    plateau = v["lr_scheduler_type"] in schedules.METRIC_DRIVEN  # reduce_lr_on_plateau, greedy
    early = v["early_stopping_patience"] is not None
    if plateau and v["eval_strategy"] == "no":
        err("lr_scheduler_type", f"{v['lr_scheduler_type']} needs an eval strategy",
            "set eval_strategy = \"steps\" or \"epoch\"")
    if early and v["eval_strategy"] == "no":
        err("early_stopping_patience", "early stopping needs an eval strategy",
            "set eval_strategy = \"steps\" or \"epoch\"")
    if v["save_strategy"] == "best" and v["eval_strategy"] == "no":
        err("save_strategy", "\"best\" needs an eval strategy to find the best", "set eval_strategy")
    if (v["load_best_model_at_end"] or plateau) and v["metric_for_best_model"] is None:
        v["metric_for_best_model"] = "loss"
    if early and v["metric_for_best_model"] is None:
        err("early_stopping_patience", "early stopping needs metric_for_best_model",
            "e.g. metric_for_best_model = \"loss\"")
    if v["save_strategy"] == "best" and v["metric_for_best_model"] is None:
        err("save_strategy", "\"best\" needs metric_for_best_model to say what is best (transformers would "
            "never save)", "e.g. metric_for_best_model = \"loss\"")
    if v["greater_is_better"] is None and v["metric_for_best_model"] is not None:
        v["greater_is_better"] = not v["metric_for_best_model"].endswith("loss")
    if not v["load_best_model_at_end"] or v["save_strategy"] == "best":
        return
    if v["eval_strategy"] != v["save_strategy"]:
        err("load_best_model_at_end", "needs eval_strategy and save_strategy to match (or save_strategy = \"best\")",
            f"eval_strategy is {describe(v['eval_strategy'])}, save_strategy is {describe(v['save_strategy'])}")
        return
    ev, sv = v["eval_steps"], v["save_steps"]
    if v["eval_strategy"] != "steps" or not ev or not sv:
        return
    if ev < 1 or sv < 1:
        if not (ev < 1 and sv < 1):
            err("save_steps", "needs to be a multiple of eval_steps, which mixing a ratio and a step count "
                "cannot guarantee", "give both as ratios or both as step counts")
        elif round(ev * 1_000_000) == 0 or round(sv * 1_000_000) % round(ev * 1_000_000) != 0:
            err("save_steps", f"{describe(sv)} is not a multiple of eval_steps {describe(ev)}",
                "load_best_model_at_end needs it")
    elif sv % ev != 0:
        err("save_steps", f"{describe(sv)} is not a round multiple of eval_steps {describe(ev)}",
            f"load_best_model_at_end needs it; e.g. save_steps = {max(1, round(sv / ev)) * ev}")


def _optimizer_rules(v: dict, given: set, err) -> None:
    sched, kw = v["lr_scheduler_type"], v["lr_scheduler_kwargs"] or {}
    try:
        schedules.resolve_kwargs(sched, kw)
    except TuitrainError as exc:
        text = str(exc).split(": ", 1)[-1]
        err("lr_scheduler_kwargs", text, "see `tuitrain preset new` for the accepted keys")
    if sched == "polynomial":
        lr_end = kw.get("lr_end", 1e-7)
        if isinstance(lr_end, (int, float)) and not isinstance(lr_end, bool) and lr_end >= v["learning_rate"]:
            err("lr_scheduler_kwargs", f"polynomial lr_end ({describe(lr_end)}) must be smaller than "
                f"learning_rate ({describe(v['learning_rate'])})", "lower lr_end or raise learning_rate")
    if sched in ("cosine_with_min_lr", "cosine_warmup_with_min_lr"):
        has = [k for k in ("min_lr", "min_lr_rate") if kw.get(k) is not None]
        if len(has) != 1:
            err("lr_scheduler_kwargs", f"{sched} needs exactly one of min_lr / min_lr_rate",
                "e.g. lr_scheduler_kwargs = { min_lr_rate = 0.1 }")
    if not v["adam_bias_correction"] and v["optim"] == "adamw_torch_fused":
        if "optim" in given:
            err("adam_bias_correction", "false has no fused kernel", 'set optim = "adamw_torch"')
        else:  # the default optimizer: its unfused kernel is the one that runs without the correction
            v["optim"] = "adamw_torch"
    optim = v["optim"]
    if optim.startswith(("galore_", "apollo_")) and not v["optim_target_modules"]:
        err("optim", f"{optim} needs optim_target_modules", "e.g. optim_target_modules = [\"attn\", \"mlp\"]")
    if optim.endswith("_layerwise") and v["gradient_accumulation_steps"] > 1:
        err("gradient_accumulation_steps", f"layerwise optimizer {optim} forbids gradient accumulation",
            "set gradient_accumulation_steps = 1")
    missing = missing_packages(optim)
    if missing:
        pip = OPTIMIZERS[optim].pip
        err("optim", f"{optim} needs the package{'s' if ' ' in pip else ''} {pip}, "
            f"which {'is' if len(missing) == 1 else 'are'} not installed", f"pip install '{pip}'")
    if v["optim_args"]:
        keys = [item.partition("=")[0] for item in v["optim_args"].replace(" ", "").split(",") if item]
        unread = unread_optim_args(optim, keys)
        if unread:
            reads = OPTIMIZERS[optim].optim_args
            err("optim_args", f"{', '.join(unread)} not read by {optim}: no effect (transformers ignores "
                "them too)", f"{optim} reads {', '.join(reads)}" if reads else f"{optim} reads no optim_args",
                NOTICE)


FSDP_OPTIONS = ("full_shard", "shard_grad_op", "offload", "auto_wrap")
FSDP1_ONLY = ("no_shard", "hybrid_shard", "hybrid_shard_zero2")


def _fsdp_rules(v: dict, err) -> None:
    """`fsdp`'s words, as transformers 5 (FSDP2) reads them; `fsdp_config` is checked at launch."""
    words = (v["fsdp"] or "").split()
    for word in words:
        if word in FSDP1_ONLY:
            err("fsdp", f"{word} is an FSDP1 strategy; tuitrain runs FSDP2 (as transformers 5 does by default)",
                "use full_shard or shard_grad_op")
        elif word not in FSDP_OPTIONS:
            err("fsdp", f"unknown option {describe(word)}", f"choose from {', '.join(FSDP_OPTIONS)}")
    if "full_shard" in words and "shard_grad_op" in words:
        err("fsdp", "full_shard and shard_grad_op both given", "keep one")
    if words and v["fp16"]:
        err("fp16", "not with fsdp: the grad scaler would see only each process's shard", "use bf16")


def _launch_rules(v: dict, err) -> None:
    if v["launcher"] == "local":
        if v["nnodes"] > 1:
            err("nnodes", "several nodes need launcher = \"torchrun\"", "set launcher = \"torchrun\"")
        if v["nproc_per_node"] != 1:
            err("nproc_per_node", "several processes need launcher = \"torchrun\"", "set launcher = \"torchrun\"")
    if v["node_rank"] >= v["nnodes"]:
        err("node_rank", f"{v['node_rank']} must be below nnodes ({v['nnodes']})", "node ranks count from 0")
    host, sep, port = v["rdzv_endpoint"].rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        err("rdzv_endpoint", f"{describe(v['rdzv_endpoint'])} is not HOST:PORT", "e.g. \"10.0.0.1:29500\"")
    for key, value in v["env"].items():
        if not isinstance(value, str):
            err("env", f"{key} = {describe(value)}: environment values must be strings",
                f"write {key} = \"{describe(value)}\"")


def _task_rules(task, col) -> None:
    o = task.options
    if task.name in ("char_gpt", "token_gpt", "modular"):
        heads, embd = o.get("n_head"), o.get("n_embd")
        if isinstance(heads, int) and isinstance(embd, int) and heads and embd % heads:
            col.add(("task", "options", "n_head"), f"n_embd ({embd}) is not divisible by n_head ({heads})",
                    "pick n_head that divides n_embd")
    if task.name == "modular" and o.get("operation") == "div":
        p = o.get("modulus")
        if isinstance(p, int) and p < 10**9 and any(p % d == 0 for d in range(2, int(p**0.5) + 1)):
            col.add(("task", "options", "modulus"), f"division needs a prime modulus; {p} is not prime",
                    "e.g. modulus = 97")
