"""Every check a lent GPU machine should run, in one go, with its results under --out.

    PYTHONPATH=. python bench/gpu_check.py --out DIR [--only env,telemetry,…] [--budget 480]

Checks, in order (each in a subprocess of its own, with a time limit, so a hang or a CUDA
fault in one leaves the others their time):

- env: GPU, MIG mode, driver, torch/CUDA, NVML; which UI packages are importable (none
  should be needed).
- telemetry: the GPU probe idle (NVML init time, per-sample cost, every field).
- smoke: a gpt-small run (quickstart on a CPU) launched detached, the probe and the Runs
  table's GPU cell sampled while it trains, stopped with a checkpoint, resumed to the end.
- bench: the fair engine-vs-hand bench (`gpu_bench.py`), eager and compiled.
- syncs: host syncs per optimizer step (torch's sync debug mode) in bf16 and fp16 with the
  default (fused) AdamW, which should have none, and fp16 with the unfused one, from the
  difference between a 16-step and an 8-step run.
- compile: the compilations of a compiled gpt-small run across an epoch boundary (its last,
  partial batch dropped) with two evaluations whose last batch is smaller: one static graph
  for training and one for evaluation, dynamic in the batch size, should be all; and the
  compile time that costs.
- oom: `auto_find_batch_size` from a batch that cannot fit, on a real CUDA OOM.

On a machine without CUDA the GPU-only checks say "skipped" and the rest run small, so
the script itself can be tried anywhere. Results: DIR/NAME.json and DIR/NAME.log per
check, DIR/summary.txt (also printed). Needs only torch, safetensors, psutil and pynvml.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import time
import warnings
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the checkout need not be pip-installed
CHECKS = ("env", "telemetry", "smoke", "bench", "syncs", "compile", "oom")  # most telling first: a cut budget skips the end
LIMITS = {"env": 45, "telemetry": 45, "smoke": 150, "bench": 240, "syncs": 120, "compile": 180, "oom": 90}
UI_PACKAGES = ("textual", "plotext", "tomlkit")

GPU_SMOKE = ("gpt-small", ["core.max_steps=80", "logging.logging_steps=5", "logging.eval_steps=40",
                           "logging.save_steps=40", "evaluation.sample_every=40", "evaluation.sample_max_new_tokens=40"],
             30)
TINY = ["task.options.block_size=32", "task.options.n_layer=1", "task.options.n_head=2", "task.options.n_embd=32",
        "core.per_device_train_batch_size=8", "dataloader.dataloader_num_workers=0"]
CPU_SMOKE = ("quickstart", [*TINY, "core.max_steps=30", "logging.logging_steps=2", "logging.eval_steps=10",
                            "logging.save_steps=10", "evaluation.sample_every=10", "evaluation.sample_max_new_tokens=10"],
             12)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _events(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _command(argv: list[str]) -> str:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable: {exc}"
    return (proc.stdout + proc.stderr).strip()


# -- the checks (each runs in its own process; returns a JSON-able dict with "status") ----------

def check_env(out: Path) -> dict:
    import platform

    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(),
            "ui_packages_importable": [p for p in UI_PACKAGES if _importable(p)],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "nvidia_smi": _command(["nvidia-smi", "--query-gpu=index,name,uuid,driver_version,memory.total,"
                                    "mig.mode.current,compute_cap", "--format=csv"]),
            "nvidia_smi_L": _command(["nvidia-smi", "-L"])}
    if torch.cuda.is_available():
        info["devices"] = [{"name": torch.cuda.get_device_name(i), "capability": list(torch.cuda.get_device_capability(i)),
                            "uuid": str(getattr(torch.cuda.get_device_properties(i), "uuid", ""))}
                           for i in range(torch.cuda.device_count())]
        info["bf16_supported"] = torch.cuda.is_bf16_supported()
        try:
            nccl = torch.cuda.nccl.version()
            info["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
        except Exception as exc:  # noqa: BLE001 - a build without NCCL
            info["nccl"] = f"unavailable: {exc}"
    try:
        import pynvml

        info["nvidia_ml_py"] = getattr(pynvml, "__version__", None) or _pip_version("nvidia-ml-py")
    except ImportError:
        info["nvidia_ml_py"] = None
    from tuitrain.engine.device_info import cuda_problem

    info["cuda_problem"] = cuda_problem()
    info["status"] = "ok"
    info["summary"] = (f"torch {info['torch']} CUDA {info['cuda']} · "
                       f"{', '.join(d['name'] for d in info.get('devices', [])) or 'no CUDA device'} · "
                       f"UI packages importable: {info['ui_packages_importable'] or 'none'}")
    return info


def _importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _pip_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _gpus_json(gpus) -> list[dict]:
    return [{**asdict(g), "label": g.label} for g in gpus]


def check_telemetry(out: Path) -> dict:
    from tuitrain.telemetry import TelemetrySampler

    sampler = TelemetrySampler()
    t0 = time.perf_counter()
    first = sampler.sample()
    init_s = time.perf_counter() - t0
    costs = []
    for _ in range(3):
        time.sleep(0.3)
        t0 = time.perf_counter()
        reading = sampler.sample()
        costs.append(time.perf_counter() - t0)
    gpus = _gpus_json(reading.gpus)
    return {"status": "ok" if first is not None else "failed", "reason": sampler.gpu_reason,
            "first_sample_s": init_s, "sample_s": costs, "gpus": gpus,
            "summary": (f"{len(gpus)} device(s), first sample (NVML init) {init_s * 1000:.0f} ms, then "
                        f"{1000 * sum(costs) / len(costs):.1f} ms a sample" + (f"; {sampler.gpu_reason}"
                                                                              if sampler.gpu_reason else ""))}


def _wait(run_dir: Path, until, deadline: float, sampler=None, column=None, seen=None) -> object:
    from tuitrain.runs.registry import run_info

    while True:
        info = run_info(run_dir)
        if sampler is not None:
            reading = sampler.sample()
            cell = column.cells([(str(run_dir), info.device, info.pid if info.state == "running" else None)])
            seen.append({"t": reading.t, "step": info.step, "state": info.state, "cell": cell[str(run_dir)],
                         "gpus": _gpus_json(reading.gpus)})
        if until(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.5 if sampler is None else 1.0)


def check_smoke(out: Path) -> dict:
    from tuitrain.paths import resolve_preset_path
    from tuitrain.runs import launch as runs
    from tuitrain.runs.registry import run_info
    from tuitrain.telemetry import TelemetrySampler
    from tuitrain.telemetry.placement import GpuColumn

    name, overrides, stop_at = GPU_SMOKE if _cuda() else CPU_SMOKE
    os.environ["XDG_STATE_HOME"] = str(out / "state")
    run_dir = out / "runs" / "smoke"
    deadline = time.monotonic() + LIMITS["smoke"] - 20
    t0 = time.monotonic()
    runs.launch(resolve_preset_path(name), overrides, output_dir=run_dir, detach=True)
    try:
        sampler, column, seen = TelemetrySampler(), GpuColumn(), []
        first = _wait(run_dir, lambda i: (i.step or 0) >= stop_at or i.state in ("finished", "failed"), deadline,
                      sampler, column, seen)
        stopped = final = first
        checkpoints: list[str] = []
        if first.state == "running":
            runs.stop(run_dir)
            stopped = _wait(run_dir, lambda i: i.state in ("stopped", "finished", "failed"), deadline)
            checkpoints = sorted((p.name for p in run_dir.glob("checkpoint-*")), key=lambda n: int(n.split("-")[1]))
            if stopped.state == "stopped":
                runs.resume(run_dir)
                final = _wait(run_dir, lambda i: i.state in ("finished", "failed", "stopped")
                              and (i.step or 0) > (stopped.step or 0), deadline)
    finally:  # past the deadline: leave no trainer holding the GPU
        with contextlib.suppress(Exception):
            if run_info(run_dir).state in ("queued", "running", "stopping"):
                runs.kill(run_dir)
    events = _events(run_dir)
    starts = [e for e in events if e.get("kind") == "start"]
    train = [e for e in events if e.get("kind") == "train"]
    result = {"preset": name, "overrides": overrides, "seconds": time.monotonic() - t0,
              "state_when_stopping": first.state, "stopped": {"state": stopped.state, "step": stopped.step},
              "checkpoints_at_stop": checkpoints, "final": {"state": final.state, "step": final.step,
                                                           "max_steps": final.max_steps, "error": final.error},
              "start_devices": [s.get("device") for s in starts], "resumed_from": [s.get("resumed_from") for s in starts],
              "warnings": [e.get("message") for e in events if e.get("kind") == "warning"],
              "last_train": train[-1] if train else None, "during_training": seen,
              "stdout_tail": (run_dir / "stdout.log").read_text(errors="replace")[-3000:]
              if (run_dir / "stdout.log").is_file() else ""}
    ok = (stopped.state == "stopped" and checkpoints and final.state == "finished"
          and final.step == final.max_steps and len(starts) == 2)
    cells = sorted({s["cell"] for s in seen})
    result["status"] = "ok" if ok else "failed"
    result["summary"] = (f"{name}: stopped at step {stopped.step} ({stopped.state}, {checkpoints[-1] if checkpoints else 'no checkpoint'}), "
                         f"resumed to {final.step}/{final.max_steps} ({final.state}) in {result['seconds']:.0f} s; "
                         f"Runs GPU cell while training: {', '.join(cells) or '-'}")
    return result


def _syncs(preset_name: str, sets: list[str], steps: int) -> int:
    import torch

    from tuitrain.config import load_preset
    from tuitrain.engine.trainer import Trainer
    from tuitrain.paths import resolve_preset_path
    import tempfile

    preset = load_preset(resolve_preset_path(preset_name),
                         [*sets, f"core.max_steps={steps}", f"logging.logging_steps={steps}",
                          'logging.eval_strategy="no"', 'logging.save_strategy="no"', "evaluation.sample_every=0"])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(preset, Path(run_dir))
        try:
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("warn")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                code = trainer.train()
        finally:
            torch.cuda.set_sync_debug_mode(0)
            trainer.close()
    if code != 0:
        raise RuntimeError(f"the {steps}-step run failed")
    return sum("synchroniz" in str(w.message) for w in caught)


def check_syncs(out: Path) -> dict:
    if not _cuda():
        return {"status": "skipped", "summary": "skipped: needs CUDA (torch's sync debug mode)"}
    base = ["core.per_device_train_batch_size=8", "core.gradient_accumulation_steps=1"]
    # The default optimizer is the fused AdamW: with it no step should wait for the GPU.
    variants = {"bf16 fused AdamW": ["precision.bf16=true", "precision.fp16=false", 'optimizer.optim="adamw_torch_fused"'],
                "fp16 AdamW (unfused)": ["precision.bf16=false", "precision.fp16=true", 'optimizer.optim="adamw_torch"'],
                "fp16 fused AdamW": ["precision.bf16=false", "precision.fp16=true", 'optimizer.optim="adamw_torch_fused"']}
    result = {}
    for label, sets in variants.items():
        short, long = _syncs("gpt-small", [*base, *sets], 8), _syncs("gpt-small", [*base, *sets], 16)
        result[label] = {"syncs_8_steps": short, "syncs_16_steps": long, "per_step": (long - short) / 8}
    fused_free = all(v["per_step"] == 0 for k, v in result.items() if "fused AdamW" in k)
    return {"status": "ok" if fused_free else "failed", "variants": result,
            "summary": "host syncs per step: " + ", ".join(f"{k} {v['per_step']:g}" for k, v in result.items())
            + ("" if fused_free else " (expected 0 with the fused AdamW)")}


def _graph_is_dynamic(gm) -> bool:
    """Whether a graph dynamo compiled takes a symbolic size (a dynamic batch dimension)."""
    import torch

    values = [n.meta.get("example_value") for n in gm.graph.nodes if n.op == "placeholder"]
    return any(isinstance(v, torch.SymInt) or (torch.is_tensor(v) and any(isinstance(d, torch.SymInt) for d in v.shape))
               for v in values)


def check_compile(out: Path) -> dict:
    import tempfile

    import torch
    import torch._dynamo
    from torch._dynamo.backends.registry import lookup_backend

    from tuitrain.config import load_preset
    from tuitrain.engine.trainer import Trainer
    from tuitrain.paths import resolve_preset_path

    cuda = _cuda()
    inner = lookup_backend("inductor" if cuda else "eager")  # eager: a smoke test of the check itself
    graphs: list[dict] = []

    def recording(gm, example_inputs):
        t0 = time.perf_counter()
        compiled = inner(gm, example_inputs)
        graphs.append({"dynamic": _graph_is_dynamic(gm), "seconds": round(time.perf_counter() - t0, 2)})
        return compiled

    torch._dynamo.register_backend(recording, name="gpu_check_recording")
    torch._dynamo.reset()
    # gpt-small: 817 windows, 51 full batches of 16 and one of 1 (13 updates an epoch at accumulation
    # 4), 90 eval windows (5 batches of 16 and one of 10). 16 updates cross the epoch boundary.
    sets = ["precision.torch_compile=true", 'precision.torch_compile_backend="gpu_check_recording"',
            "core.max_steps=16", "logging.logging_steps=4", 'logging.eval_strategy="steps"', "logging.eval_steps=8",
            'logging.save_strategy="no"', "evaluation.sample_every=0"]
    if not cuda:  # tiny: 44 windows an epoch, 5 full batches of 8 and one of 4
        sets += [*TINY, "precision.bf16=false", "precision.tf32=false", "task.options.examples_per_epoch=44"]
    preset = load_preset(resolve_preset_path("gpt-small"), sets)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(preset, Path(run_dir))
        try:
            code = trainer.train()
            train_n, eval_n = len(trainer.bundle.train_dataset), len(trainer.bundle.eval_dataset)
        finally:
            trainer.close()
        evals = [e for e in _events(Path(run_dir)) if e.get("kind") == "eval"]
    seconds = time.monotonic() - t0
    torch._dynamo.reset()
    batch, eval_batch = preset.args.per_device_train_batch_size, preset.args.per_device_eval_batch_size
    ok = code == 0 and len(evals) == 2 and [g["dynamic"] for g in graphs] == [False, eval_n % eval_batch != 0]
    kinds = ", ".join(f"{'dynamic' if g['dynamic'] else 'static'} {g['seconds']:.0f} s" for g in graphs)
    return {"status": "ok" if ok else "failed", "graphs": graphs, "seconds": seconds, "evaluations": len(evals),
            "train_examples": train_n, "batch": batch, "drop_last": preset.args.dataloader_drop_last,
            "eval_examples": eval_n, "eval_batch": eval_batch,
            "summary": (f"{len(graphs)} graph(s) compiled ({kinds}) over 16 steps across an epoch boundary "
                        f"and {len(evals)} evaluations; run {seconds:.0f} s"
                        + ("" if ok else "; expected one static training graph and one evaluation graph"))}


def check_bench(out: Path) -> dict:
    import torch

    argv = [sys.executable, str(REPO / "bench" / "gpu_bench.py"), "--json", str(out / "bench-figures.json")]
    if torch.cuda.is_available():
        argv += ["--preset", "gpt-small", "--device", "cuda", "--compile", "both", "--warmup", "10", "--steps", "30"]
    else:  # a smoke test of the bench itself: tiny, eager
        argv += ["--preset", "gpt-small", "--device", "cpu", "--compile", "off", "--warmup", "3", "--steps", "6",
                 "--peak-tflops", "0.001", *[a for s in [*TINY, "precision.bf16=false", "precision.tf32=false",
                                                         'optimizer.optim="adamw_torch"'] for a in ("--set", s)]]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=LIMITS["bench"] - 10)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("#", "eager", "compiled"))]
    figures = json.loads((out / "bench-figures.json").read_text()) if proc.returncode == 0 else None
    return {"status": "ok" if proc.returncode == 0 else "failed", "argv": argv, "lines": lines, "figures": figures,
            "stderr_tail": proc.stderr[-3000:], "summary": " | ".join(lines[1:]) or proc.stderr.strip()[-300:]}


def check_oom(out: Path) -> dict:
    if not _cuda():
        return {"status": "skipped", "summary": "skipped: needs a real CUDA out-of-memory"}
    from tuitrain.config import load_preset
    from tuitrain.paths import resolve_preset_path
    from tuitrain.runs.rundir import create_run_dir

    sets = ["core.auto_find_batch_size=true", "core.per_device_train_batch_size=2048", "core.gradient_accumulation_steps=1",
            "core.max_steps=3", "logging.logging_steps=1", 'logging.eval_strategy="no"', 'logging.save_strategy="no"',
            "evaluation.sample_every=0", "task.options.examples_per_epoch=8192"]
    run_dir = create_run_dir(load_preset(resolve_preset_path("gpt-small"), sets), output_dir=out / "runs" / "oom")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "tuitrain.engine", str(run_dir)], capture_output=True, text=True,
                          timeout=LIMITS["oom"] - 10)
    events = _events(run_dir)
    tried = [e.get("message") for e in events if e.get("kind") == "warning"]
    status = [e for e in events if e.get("kind") == "status"]
    final = status[-1] if status else {}
    return {"status": "ok" if proc.returncode == 0 and final.get("state") == "finished" and tried else "failed",
            "seconds": time.monotonic() - t0, "exit_code": proc.returncode, "warnings": tried, "final": final,
            "stdout_tail": proc.stdout[-2000:], "stderr_tail": proc.stderr[-3000:],
            "summary": f"{len(tried)} retr{'y' if len(tried) == 1 else 'ies'} from batch 2048, "
                       f"final state {final.get('state')} in {time.monotonic() - t0:.0f} s"
                       + (f"; last: {tried[-1]}" if tried else "")}


# -- orchestration --------------------------------------------------------------------------------

def run_one(name: str, out: Path, limit: float | None) -> int:
    """The body of one check's subprocess: run it within `limit` seconds, write NAME.json."""
    if limit:
        LIMITS[name] = limit  # what is left of the budget, when less than the check's own limit
    try:
        result = globals()[f"check_{name}"](out)
    except Exception as exc:  # noqa: BLE001 - a failed check is a result, not a crash of the script
        import traceback

        traceback.print_exc()
        result = {"status": "failed", "summary": f"{type(exc).__name__}: {exc}"}
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check-out", help="results folder ($OUT)")
    parser.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {','.join(CHECKS)}")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all checks together")
    parser.add_argument("--run-check", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=None, help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    out = Path(opts.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if opts.run_check:
        return run_one(opts.run_check, out, opts.limit)
    wanted = [c.strip() for c in opts.only.split(",") if c.strip()]
    unknown = sorted(set(wanted) - set(CHECKS))
    if unknown:
        print(f"error: --only: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    end = time.monotonic() + opts.budget
    lines = []
    for name in (c for c in CHECKS if c in wanted):
        limit = min(LIMITS[name], end - time.monotonic())
        if limit < 15:
            lines.append(f"{name:<9} skipped: the time budget is spent")
            print(lines[-1], flush=True)
            continue
        t0 = time.monotonic()
        (out / f"{name}.json").unlink(missing_ok=True)  # never report an earlier run's result
        with open(out / f"{name}.log", "w") as log:
            try:
                proc = subprocess.run([sys.executable, __file__, "--out", str(out), "--run-check", name,
                                       "--limit", f"{limit:.0f}"], cwd=REPO,
                                      stdout=log, stderr=subprocess.STDOUT, timeout=limit)
                code = proc.returncode
            except subprocess.TimeoutExpired:
                code = None
        took = time.monotonic() - t0
        try:
            result = json.loads((out / f"{name}.json").read_text())
        except (OSError, ValueError):
            result = {"status": "timeout" if code is None else "failed",
                      "summary": f"no result (exit {code}; see {name}.log)" if code is not None
                      else f"over its {limit:.0f} s limit (see {name}.log)"}
        lines.append(f"{name:<9} {result.get('status', '?'):<7} {took:5.0f} s  {result.get('summary', '')}")
        print(lines[-1], flush=True)
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    return 0 if all(" failed " not in line and " timeout " not in line for line in lines) else 1


if __name__ == "__main__":
    sys.exit(main())
