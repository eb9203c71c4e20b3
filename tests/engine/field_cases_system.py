"""Cases of the "every honoured field acts" table: [distributed], [precision],
[reproducibility] and [launch].

A few fields act only on hardware this CPU machine lacks (CUDA) or under several processes.
The multi-process ones run in one two-rank gloo job (`ddp_fields`). The CUDA-only ones show
what the engine builds or calls for a CUDA device (the loader's pinning, the autocast dtype,
the cache emptying cadence), and their CPU behaviour where it has one (a one-line refusal);
`bench/gpu_check.sh` runs them on a GPU.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest
import torch

from field_harness import changes, ddp_case, failure, losses, ok, outcome, preset_of, registrar

CASES: dict = {}
case = registrar(CASES)


def refused(fragment: str):
    """The field's value is refused before training, in one line naming it (the default trains)."""
    def observe(result):
        if result.code == 0:
            return "trained"
        line = failure(result)
        assert fragment in line and "\n" not in line, line
        return line
    return observe


# -- [distributed] ----------------------------------------------------------------------------------

@contextlib.contextmanager
def _world(size: int):
    """The environment torchrun gives a rank (without starting the others)."""
    saved = {k: os.environ.get(k) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    os.environ.update(WORLD_SIZE=str(size), RANK="0", LOCAL_RANK="0")
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _backend_refusal(settings: dict) -> str:
    from tuitrain.engine.distributed import init_distributed
    from tuitrain.errors import TuitrainError

    with _world(2), pytest.raises(TuitrainError) as info:
        init_distributed(preset_of(settings).args)
    return info.value.one_line()


@case("distributed.ddp_backend")
def _backend(tmp: Path) -> None:
    # under torchrun the backend is ddp_backend's (gloo on a CPU by default): nccl needs GPUs
    assert "nccl needs CUDA GPUs" in _backend_refusal({"ddp_backend": "nccl"})
    assert "oneccl_bind_pt" in _backend_refusal({"ddp_backend": "ccl"})


@case("distributed.xpu_backend")
def _xpu_backend(tmp: Path) -> None:
    assert "oneccl_bind_pt" in _backend_refusal({"xpu_backend": "ccl"})


_GROUP: list = []


def _ddp_model(settings: dict):
    """The DDP wrapper the engine builds for `settings` (a one-rank gloo group in this process)."""
    import torch.distributed as dist

    from tuitrain.engine.distributed import DistContext, wrap_model

    if not dist.is_initialized():
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
        _GROUP.append(True)
    ctx = DistContext(backend="gloo", world_size=1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.BatchNorm1d(3))
    return wrap_model(model, preset_of(settings).args, ctx)


def teardown_group() -> None:
    import torch.distributed as dist

    if _GROUP and dist.is_initialized():
        dist.destroy_process_group()
        _GROUP.clear()


def _ddp_attr(name: str, value, attr: str, default, changed):
    def run(tmp: Path) -> None:
        try:
            assert getattr(_ddp_model({}), attr) == default
            assert getattr(_ddp_model({name.split(".")[1]: value}), attr) == changed
        finally:
            teardown_group()
    return run


CASES["distributed.ddp_bucket_cap_mb"] = _ddp_attr("distributed.ddp_bucket_cap_mb", 5, "bucket_bytes_cap",
                                                   25 * 1024 * 1024, 5 * 1024 * 1024)
CASES["distributed.ddp_find_unused_parameters"] = _ddp_attr("distributed.ddp_find_unused_parameters", True,
                                                            "find_unused_parameters", False, True)
CASES["distributed.ddp_gradient_as_bucket_view"] = _ddp_attr("distributed.ddp_gradient_as_bucket_view", True,
                                                             "gradient_as_bucket_view", False, True)
CASES["distributed.ddp_broadcast_buffers"] = _ddp_attr("distributed.ddp_broadcast_buffers", False,
                                                       "broadcast_buffers", True, False)
CASES["distributed.ddp_static_graph"] = _ddp_attr("distributed.ddp_static_graph", True, "static_graph", False, True)
CASES["distributed.ddp_timeout"] = ddp_case("ddp_timeout")


@case("distributed.use_cpu")
def _use_cpu(tmp: Path) -> None:
    # a preset that asks for a GPU (bf16) but lands on the CPU is warned about; use_cpu says the CPU is meant
    def warnings(result):
        return [e["message"] for e in ok(result).events("warning")]

    asked = warnings(outcome(tmp, {"bf16": True}))
    meant = warnings(outcome(tmp, {"bf16": True, "use_cpu": True}))
    assert len(asked) == 1 and "precision.bf16 asks for a GPU" in asked[0] and meant == []


def _plan(settings: dict):
    from tuitrain.engine.fsdp import fsdp_plan

    return fsdp_plan(preset_of(settings).args)


def _units(settings: dict) -> list[bool]:
    """Which of a test model's layers become FSDP units of their own under the preset's plan."""
    from tuitrain.engine.fsdp import _units as units

    model = torch.nn.Sequential(torch.nn.Linear(30, 30), torch.nn.Linear(30, 2))
    chosen = {id(m) for m in units(model, _plan(settings))}
    return [id(m) in chosen for m in model]


@case("distributed.fsdp")
def _fsdp_case(tmp: Path) -> None:
    # the words of fsdp become FSDP2's plan (reshard after forward, CPU offload), as transformers 5 reads them
    assert _plan({}) is None
    assert _plan({"fsdp": "full_shard"}).reshard_after_forward is True
    offload = _plan({"fsdp": "shard_grad_op offload"})
    assert offload.reshard_after_forward is False and offload.cpu_offload is True


@case("distributed.fsdp_min_num_params")
def _fsdp_min(tmp: Path) -> None:
    assert _units({"fsdp": "full_shard auto_wrap"}) == [False, False]
    assert _units({"fsdp": "full_shard auto_wrap", "fsdp_min_num_params": 100}) == [True, False]


@case("distributed.fsdp_config")
def _fsdp_config(tmp: Path) -> None:
    assert _units({"fsdp": "full_shard auto_wrap", "fsdp_config": {"min_num_params": 100}}) == [True, False]
    assert _units({"fsdp": "full_shard auto_wrap", "fsdp_config": {"min_num_params": 10}}) == [True, True]


# -- [precision] ------------------------------------------------------------------------------------

@case("precision.fp16")
def _fp16(tmp: Path) -> None:
    from tuitrain.engine.precision import compute_dtype

    assert "fp16 mixed precision needs a GPU" in failure(outcome(tmp, {"fp16": True}))
    cuda = torch.device("cuda", 0)
    assert compute_dtype(preset_of({}).args, cuda) is None
    assert compute_dtype(preset_of({"fp16": True}).args, cuda) == torch.float16


CASES["precision.bf16"] = changes("precision.bf16", True, losses, expect=lambda a, b: all(abs(x - y) < 0.05 for x, y in zip(a, b)))
for _key in ("fp16_backend", "half_precision_backend"):
    CASES[f"precision.{_key}"] = changes(f"precision.{_key}", "apex", refused(f"precision.{_key}: apex"))


@case("precision.fp16_full_eval")
def _fp16_full_eval(tmp: Path) -> None:
    from tuitrain.engine.precision import eval_dtype

    assert "fp16_full_eval: needs a GPU" in failure(outcome(tmp, {"fp16_full_eval": True}))
    assert eval_dtype(preset_of({"fp16_full_eval": True}).args, torch.device("cuda", 0)) == torch.float16


CASES["precision.bf16_full_eval"] = changes(
    "precision.bf16_full_eval", True, lambda r: [e["eval_loss"] for e in ok(r).events("eval")],
    base={"do_eval": True, "max_steps": 1, "do_train": False},
    expect=lambda a, b: abs(a[0] - b[0]) < 0.05 * abs(a[0]))
CASES["precision.tf32"] = changes("precision.tf32", True, refused("TF32 needs an NVIDIA Ampere or newer GPU"))
CASES["precision.skip_memory_metrics"] = changes(
    "precision.skip_memory_metrics", False, lambda r: sorted(k for k in ok(r).events("summary")[0] if "_mem_" in k),
    expect=lambda a, b: a == [] and {"train_mem_cpu_alloc_delta", "train_mem_cpu_peaked_delta",
                                      "init_mem_cpu_alloc_delta", "before_init_mem_cpu"} <= set(b))


@case("precision.activation_checkpointing")
def _checkpointing(tmp: Path) -> None:
    # a checkpointed block runs its forward again in the backward pass (a pre-hook: torch stops
    # the recomputation once it has what the backward needs, before the forward returns)
    counts = []
    for extra in ({}, {"activation_checkpointing": True}):
        calls = []

        def count(trainer):
            trainer.raw_model.blocks[0].register_forward_pre_hook(lambda *a: calls.append(1))

        ok(outcome(tmp, {"task": "char_gpt", "max_steps": 2, **extra}, before_train=count))
        counts.append(len(calls))
    assert counts == [2, 4]


CASES["precision.activation_checkpointing_kwargs"] = changes(
    "precision.activation_checkpointing_kwargs", {"use_reentrant": False, "every_n_layers": 2},
    lambda r: ok(r).model.enabled, base={"task": "probe", "options": {"checkpointing": True},
                                         "activation_checkpointing": True},
    expect=lambda a, b: a == [{"kwargs": None, "every_n_layers": 1, "offload": False}]
    and b == [{"kwargs": {"use_reentrant": False}, "every_n_layers": 2, "offload": False}])
CASES["precision.profile"] = changes("precision.profile", True, lambda r: sorted(p.name for p in (ok(r).run_dir / "profile").glob("*.json"))
                                     if (r.run_dir / "profile").exists() else [],
                                     expect=lambda a, b: a == [] and len(b) == 1)
CASES["precision.label_smoothing_factor"] = changes("precision.label_smoothing_factor", 0.2, losses,
                                                    base={"task": "modular"})


@case("precision.torch_compile")
def _compile(tmp: Path) -> None:
    plain = ok(outcome(tmp, {"max_steps": 2}))
    compiled = ok(outcome(tmp, {"max_steps": 2, "torch_compile": True, "torch_compile_backend": "eager"}))
    torch._dynamo.reset()
    assert type(plain.trainer.model).__name__ != "OptimizedModule"
    assert type(compiled.trainer.model).__name__ == "OptimizedModule"


@case("precision.torch_compile_backend")
def _compile_backend(tmp: Path) -> None:
    # a backend of the test's own: dynamo hands it the traced graph
    graphs = []

    def probe(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    torch._dynamo.reset()
    with pytest.MonkeyPatch.context() as mp:
        from torch._dynamo.backends import registry

        mp.setitem(registry._BACKENDS, "tuitrain_probe", None)
        mp.setitem(registry._COMPILER_FNS, "tuitrain_probe", probe)
        ok(outcome(tmp, {"max_steps": 2}))
        assert graphs == []
        ok(outcome(tmp, {"max_steps": 2, "torch_compile_backend": "tuitrain_probe"}))
    torch._dynamo.reset()
    assert graphs


@case("precision.torch_compile_mode")
def _compile_mode(tmp: Path) -> None:
    calls = []
    real = torch.compile

    def recording(model, **kwargs):
        calls.append(kwargs)
        return real(model, **{**kwargs, "backend": "eager", "mode": None})

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch, "compile", recording)
        ok(outcome(tmp, {"max_steps": 1, "torch_compile": True}))
        ok(outcome(tmp, {"max_steps": 1, "torch_compile_mode": "max-autotune-no-cudagraphs"}))
    torch._dynamo.reset()
    assert [c["mode"] for c in calls] == [None, "max-autotune-no-cudagraphs"]


@case("precision.torch_empty_cache_steps")
def _empty_cache(tmp: Path) -> None:
    # HF empties the device cache every N steps; on a CPU there is none, so the call is recorded
    for extra, expected in (({}, []), ({"torch_empty_cache_steps": 2}, [2, 4])):
        emptied = []

        def record(trainer):
            trainer._empty_cache = lambda: emptied.append(trainer.state.global_step)

        ok(outcome(tmp, extra, before_train=record))
        assert emptied == expected


# -- [reproducibility] ------------------------------------------------------------------------------

def _initial(result):
    return [round(float(p.view(-1)[0]), 6) for p in result.trainer.bundle.model.parameters()][:1]


CASES["reproducibility.seed"] = changes("reproducibility.seed", 4, losses, expect=lambda a, b: a[0] != b[0])
ORDER = {"task": "probe", "max_steps": 3}
for _key in ("data_seed", "dataloader_seed"):
    CASES[f"reproducibility.{_key}"] = changes(f"reproducibility.{_key}", 99, lambda r: ok(r).order(), base=ORDER,
                                               expect=lambda a, b: sorted(a) != sorted(b) or a != b)


@case("reproducibility.full_determinism")
def _determinism(tmp: Path) -> None:
    before = torch.are_deterministic_algorithms_enabled()
    try:
        seen = []
        for extra in ({}, {"full_determinism": True}):
            ok(outcome(tmp, {"max_steps": 1, **extra},
                       before_train=lambda t: seen.append(torch.are_deterministic_algorithms_enabled())))
        assert seen == [before, True]
    finally:
        torch.use_deterministic_algorithms(before)


def _tracked(tmp: Path, settings: dict):
    from fake_integrations import install_wandb

    with pytest.MonkeyPatch.context() as mp:
        rec = install_wandb(mp)
        ok(outcome(tmp, settings, fresh=True))
    return rec


@case("reproducibility.report_to")
def _report_to(tmp: Path) -> None:
    silent = _tracked(tmp, {"max_steps": 2})
    tracked = _tracked(tmp, {"max_steps": 2, "report_to": ["wandb"]})
    assert silent.calls == []
    assert [sorted(c[1]) for c in tracked.calls if c[0] == "log"][0][:2] == ["train/epoch", "train/global_step"]
    assert len([c for c in tracked.calls if c[0] == "log"]) == 3  # two steps and the summary


@case("reproducibility.run_name")
def _run_name(tmp: Path) -> None:
    (plain,) = _tracked(tmp, {"max_steps": 1, "report_to": ["wandb"]}).named("init")
    (named,) = _tracked(tmp, {"max_steps": 1, "report_to": ["wandb"], "run_name": "baseline"}).named("init")
    assert plain[0]["name"].startswith("run-") and named[0]["name"] == "baseline"


def _hub(tmp: Path, settings: dict, gate: bool = False):
    from fake_integrations import install_hub
    from tuitrain.engine.hub import HubPusher

    with pytest.MonkeyPatch.context() as mp:
        hub = install_hub(mp)
        if gate:  # the network holds the first upload until training ends
            hub.gate = threading.Event()
            finish = HubPusher.finish
            mp.setattr(HubPusher, "finish", lambda self, *a, **kw: (hub.gate.set(), finish(self, *a, **kw))[1])
        result = ok(outcome(tmp, {"max_steps": 4, "save_strategy": "steps", "save_steps": 2, **settings}, fresh=True))
    return hub, result


@case("reproducibility.push_to_hub")
def _push(tmp: Path) -> None:
    hub_off, _ = _hub(tmp, {})
    hub_on, _ = _hub(tmp, {"push_to_hub": True})
    assert hub_off.calls == [] and [u["message"] for u in hub_on.uploads()][-1] == "End of training"


def _hub_case(key: str, value, observe, expect, gate: bool = False, base: dict | None = None):
    def run(tmp: Path) -> None:
        settings = {"push_to_hub": True, **(base or {})}
        a = observe(*_hub(tmp, settings, gate))
        b = observe(*_hub(tmp, {**settings, key: value}, gate))
        assert a != b and expect(a, b), (a, b)
    return run


CASES["reproducibility.hub_model_id"] = _hub_case(
    "hub_model_id", "org/model", lambda hub, r: {u["repo_id"] for u in hub.uploads()},
    lambda a, b: b == {"org/model"})
CASES["reproducibility.hub_strategy"] = _hub_case(
    "hub_strategy", "end", lambda hub, r: [u["message"] for u in hub.uploads()],
    lambda a, b: len(a) == 3 and b == ["End of training"])
CASES["reproducibility.hub_token"] = _hub_case(
    "hub_token", "hf_test", lambda hub, r: {u["token"] for u in hub.uploads()}, lambda a, b: b == {"hf_test"})
CASES["reproducibility.hub_private_repo"] = _hub_case(
    "hub_private_repo", True, lambda hub, r: [c[1] for c in hub.named("create_repo")], lambda a, b: b == [True])
CASES["reproducibility.hub_always_push"] = _hub_case(
    "hub_always_push", True, lambda hub, r: [u["message"] for u in hub.uploads()],
    lambda a, b: a == ["Training in progress, step 2", "End of training"] and len(b) == 3, gate=True,
    base={"hub_strategy": "every_save"})


# -- [launch] ---------------------------------------------------------------------------------------

def _argv(settings: dict) -> list[str]:
    from tuitrain.runs.launch import engine_argv

    return engine_argv(preset_of(settings), Path("/runs/r1"))


def _launch_case(key: str, value, expect, base: dict | None = None):
    def run(tmp: Path) -> None:
        settings = {"launcher": "torchrun", **(base or {})}
        a, b = _argv(settings), _argv({**settings, key: value})
        assert a != b and expect(a, b), (a, b)
    return run


@case("launch.launcher")
def _launcher(tmp: Path) -> None:
    assert _argv({})[1:3] == ["-m", "tuitrain.engine"]
    assert _argv({"launcher": "torchrun"})[1:3] == ["-m", "torch.distributed.run"]


MULTI = {"nnodes": 2, "rdzv_endpoint": "10.0.0.1:29500"}
CASES["launch.nproc_per_node"] = _launch_case("nproc_per_node", 2, lambda a, b: "--nproc-per-node=2" in b)
CASES["launch.nnodes"] = _launch_case("nnodes", 2, lambda a, b: "--standalone" in a and "--nnodes=2" in b,
                                      base={"rdzv_endpoint": "10.0.0.1:29500"})
CASES["launch.node_rank"] = _launch_case("node_rank", 1, lambda a, b: "--node-rank=1" in b, base=MULTI)
CASES["launch.rdzv_backend"] = _launch_case("rdzv_backend", "static", lambda a, b: "--rdzv-backend=static" in b,
                                            base=MULTI)
CASES["launch.rdzv_endpoint"] = _launch_case("rdzv_endpoint", "10.0.0.2:1234",
                                             lambda a, b: "--rdzv-endpoint=10.0.0.2:1234" in b, base=MULTI)
CASES["launch.rdzv_id"] = _launch_case("rdzv_id", "job7", lambda a, b: "--rdzv-id=r1" in a and "--rdzv-id=job7" in b,
                                       base=MULTI)
CASES["launch.max_restarts"] = _launch_case("max_restarts", 3, lambda a, b: "--max-restarts=3" in b)


def _env(settings: dict) -> dict:
    from tuitrain.runs.launch import launch_env

    return launch_env(preset_of(settings))


@case("launch.visible_devices")
def _visible(tmp: Path) -> None:
    assert "CUDA_VISIBLE_DEVICES" not in _env({}) and _env({"visible_devices": "1,2"})["CUDA_VISIBLE_DEVICES"] == "1,2"


@case("launch.env")
def _launch_env(tmp: Path) -> None:
    assert "NCCL_DEBUG" not in _env({}) and _env({"env": {"NCCL_DEBUG": "INFO"}})["NCCL_DEBUG"] == "INFO"
