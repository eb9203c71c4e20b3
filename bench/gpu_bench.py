"""Engine tokens/s and MFU against the hand-written loop of `engine_bench.py`, on any preset.

One line per case (eager, compiled): tokens/s of each side, MFU of each side, the
engine/hand ratio and the compilations each side did inside its timed steps (there
should be none). What makes the two sides comparable:

- the workload: one epoch of `examples_per_epoch` random windows covers every step of
  both sides (no epoch boundary, no loader restart, no partial batch inside the timing),
  and `dataloader_drop_last` keeps any batch full;
- the compiler: `torch._dynamo.reset()` before each side, so neither reuses the other's
  graphs, and the warm-up steps (compilation, allocator, loader start) are left out of
  both timings;
- the arithmetic: FLOPs per token from the model's own config, 6·N + 12·L·d·T (N the
  parameters less the embedding lookups, L layers, d width, T the sequence length), and
  tokens per step from the task's tokens per example; the peak from the GPU's exact part
  (an H100/H200 NVL is not an SXM part).

    PYTHONPATH=. python bench/gpu_bench.py --preset gpt-small --device cuda --compile both
    PYTHONPATH=. python bench/gpu_bench.py --preset quickstart --device cpu --steps 20 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import hand_loop  # noqa: E402

from tuitrain.config import load_preset  # noqa: E402
from tuitrain.engine.trainer import Trainer  # noqa: E402
from tuitrain.errors import TuitrainError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Dense bf16 tensor-core peaks (no sparsity) in FLOP/s, by a substring of the GPU's name;
# the first match wins, so the NVL and PCIe parts come before their SXM siblings.
PEAKS = (("H100 NVL", 835e12), ("H200 NVL", 835e12), ("H100 PCIe", 756e12), ("GH200", 989e12),
         ("H100", 989e12), ("H200", 989e12), ("A100", 312e12))


def resolve_preset(name: str) -> Path:
    """A preset file: a path as given, else `presets/NAME.toml` of this checkout."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = REPO / "presets" / f"{name}.toml"
    if bundled.is_file():
        return bundled
    raise TuitrainError(f"--preset {name}: no such file and no presets/{name}.toml")


def peak_flops(gpu_name: str | None, peak_tflops: float | None) -> float | None:
    """The bf16 peak in FLOP/s: --peak-tflops, else looked up by GPU name (None on a CPU)."""
    if peak_tflops:
        return peak_tflops * 1e12
    if gpu_name is None:
        return None
    for key, peak in PEAKS:
        if key in gpu_name:
            return peak
    raise TuitrainError(f"unknown peak bf16 FLOP/s for GPU {gpu_name!r}; pass --peak-tflops")


def model_shape(model: torch.nn.Module) -> tuple[int, int, int]:
    """(layers, width, sequence length) from the model's config (a GPT-style `config`)."""
    config = getattr(model, "config", None)
    try:
        return int(config.n_layer), int(config.n_embd), int(config.block_size)
    except (AttributeError, TypeError, ValueError):
        raise TuitrainError(f"{type(model).__name__} has no config with n_layer, n_embd and block_size: "
                            "pass --flops-per-token") from None


def matmul_parameters(model: torch.nn.Module) -> int:
    """Parameters (tied ones once) less embedding tables that are only looked up."""
    linear = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    lookups = {id(m.weight): m.weight.numel() for m in model.modules()
               if isinstance(m, torch.nn.Embedding) and id(m.weight) not in linear}
    return sum(p.numel() for p in model.parameters()) - sum(lookups.values())


def flops_per_token(model: torch.nn.Module) -> float:
    """Training FLOPs per token: 6N + 12·L·d·T, from the model's config (nanoGPT's estimate)."""
    layers, width, seq = model_shape(model)
    return 6 * matmul_parameters(model) + 12 * layers * width * seq


def bench_overrides(steps: int, warmup: int, compiled: bool, device: str, global_batch: int,
                    options: dict) -> list[str]:
    """What the bench sets on top of the preset and the user's --set: no eval, saving or
    samples; one epoch long enough for every step; a train event after the warm-up and at
    the end, read for the engine's timing."""
    sets = [f"core.max_steps={steps}", f"logging.logging_steps={warmup}", 'logging.eval_strategy="no"',
            'logging.save_strategy="no"', "evaluation.sample_every=0", "dataloader.dataloader_drop_last=true",
            f"precision.torch_compile={'true' if compiled else 'false'}",
            f"distributed.use_cpu={'true' if device == 'cpu' else 'false'}"]
    if "examples_per_epoch" in options:
        sets.append(f"task.options.examples_per_epoch={steps * global_batch}")
    return sets


def bench_preset(path: Path, user_sets: list[str], steps: int, warmup: int, compiled: bool, device: str):
    """The preset both sides run: the user's, with the bench's workload on top."""
    first = load_preset(path, list(user_sets))
    args = first.args
    global_batch = int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps)
    preset = load_preset(path, [*user_sets, *bench_overrides(steps, warmup, compiled, device, global_batch,
                                                             first.task.options)])
    if bool(preset.args.torch_compile) != compiled:  # HF: a compile backend or mode turns compiling on
        raise TuitrainError("the eager case would compile: the preset sets torch_compile_backend or "
                            "torch_compile_mode, which turn torch_compile on; use --compile on")
    return preset


def workload_problems(preset, bundle) -> list[str]:
    """Whatever would make the timed steps differ between the two sides (empty when fair)."""
    args = preset.args
    global_batch = int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps)
    needed = int(args.max_steps) * global_batch
    problems = []
    if len(bundle.train_dataset) < needed:
        problems.append(f"the epoch holds {len(bundle.train_dataset)} examples but {args.max_steps} steps of "
                        f"{global_batch} need {needed}: a loader restarts inside the timing")
    if not getattr(args, "dataloader_drop_last", False) and len(bundle.train_dataset) % global_batch:
        problems.append("the last batch of an epoch is partial (a different shape: a recompile when compiled)")
    if not bundle.tokens_per_example:
        problems.append("the task gives no tokens_per_example: tokens/s is not known")
    return problems


@contextlib.contextmanager
def compile_clock():
    """Wall-clock times at which torch compiled something (dynamo frames, lazy backward, …)."""
    times: list[float] = []
    try:
        from torch._dynamo.callback import callback_handler, on_compile_start
    except ImportError:  # older torch: no compile callbacks; counts are then unknown
        yield None
        return

    def started(*_args, **_kwargs):
        times.append(time.time())

    on_compile_start(started)
    try:
        yield times
    finally:
        callback_handler.remove_start_callback(started)


@dataclass
class Side:
    """One side's timed steps."""

    steps: int
    seconds: float
    compiles: int | None  # compilations during the whole side (None: torch cannot tell)
    compiles_timed: int | None  # of those, inside the timed steps


def _count(times: list[float] | None, window: tuple[float, float]) -> tuple[int | None, int | None]:
    if times is None:
        return None, None
    return len(times), sum(window[0] < t <= window[1] for t in times)


def hand_side(preset, warmup: int, compiled: bool) -> Side:
    """The hand-written loop, after a compiler reset."""
    torch._dynamo.reset()
    window: list[float] = []
    with compile_clock() as times:
        steps, seconds = hand_loop(preset, warmup, compile_model=compiled, window=window)
    return Side(steps, seconds, *_count(times, (window[0], window[-1])))


def engine_side(preset, warmup: int) -> Side:
    """The engine on a scratch run directory, after a compiler reset; timed between its
    train events at the end of the warm-up and at the last step."""
    torch._dynamo.reset()
    with compile_clock() as times, tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(preset, Path(run_dir))
        try:
            code = trainer.train()
        finally:
            trainer.close()
        if code != 0:
            raise TuitrainError("the engine's run failed (see the traceback above)")
        events = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in events if e.get("kind") == "train"]
    if len(train) < 2 or train[0]["step"] != warmup:
        raise TuitrainError(f"the engine logged no train events at steps {warmup} and {preset.args.max_steps}")
    window = (train[0]["t"], train[-1]["t"])
    return Side(train[-1]["step"] - train[0]["step"], window[1] - window[0], *_count(times, window))


def run_case(preset, warmup: int, compiled: bool, peak: float | None, per_token: float | None) -> dict:
    """Both sides of one compile setting, as a dict of figures."""
    from tuitrain.engine.tasks import build_task

    bundle = build_task(preset.task, preset.args)
    problems = workload_problems(preset, bundle)
    if problems:
        raise TuitrainError("unfair workload: " + "; ".join(problems))
    args = preset.args
    tokens_per_step = (int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps)
                       * int(bundle.tokens_per_example))
    per_token = per_token or flops_per_token(bundle.model)
    hand, engine = hand_side(preset, warmup, compiled), engine_side(preset, warmup)
    rate = {name: side.steps * tokens_per_step / side.seconds for name, side in (("hand", hand), ("engine", engine))}
    return {"case": "compiled" if compiled else "eager", "timed_steps": hand.steps, "tokens_per_step": tokens_per_step,
            "flops_per_token": per_token, "peak_flops": peak,
            "hand_tokens_per_s": rate["hand"], "engine_tokens_per_s": rate["engine"],
            "mfu_hand": rate["hand"] * per_token / peak if peak else None,
            "mfu_engine": rate["engine"] * per_token / peak if peak else None,
            "ratio": rate["engine"] / rate["hand"], "hand": asdict(hand), "engine": asdict(engine)}


def format_case(result: dict) -> str:
    """One line: tokens/s of each side, MFU, ratio, and compilations inside the timed steps."""
    def mfu(value: float | None) -> str:
        return f"{100 * value:5.1f}%" if value is not None else "  n/a"

    def timed(side: dict) -> str:
        return "?" if side["compiles_timed"] is None else str(side["compiles_timed"])

    return (f"{result['case']:<9} hand {result['hand_tokens_per_s']:12.1f} tokens/s  "
            f"engine {result['engine_tokens_per_s']:12.1f} tokens/s  "
            f"MFU hand {mfu(result['mfu_hand'])} engine {mfu(result['mfu_engine'])}  ratio {result['ratio']:.3f}x  "
            f"recompiles in timed steps hand {timed(result['hand'])} engine {timed(result['engine'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt-small", help="a preset name in presets/ or a path")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="GROUP.KEY=VALUE")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="off")
    parser.add_argument("--steps", type=int, default=60, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for MFU (default: by GPU name)")
    parser.add_argument("--flops-per-token", type=float, default=None,
                        help="training FLOPs per token (default: 6N + 12·L·d·T from the model's config)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--json", default=None, metavar="PATH", help="also write the figures as JSON")
    opts = parser.parse_args(argv)
    try:
        if opts.warmup < 1 or opts.steps < 1:
            raise TuitrainError("--steps and --warmup must be at least 1")
        if opts.device == "cuda" and not torch.cuda.is_available():
            raise TuitrainError("--device cuda: torch sees no CUDA GPU here; use --device cpu")
        if opts.threads:
            torch.set_num_threads(opts.threads)
        # The engine logs every `warmup` steps; a multiple keeps its last event at the end.
        total = opts.warmup + -(-opts.steps // opts.warmup) * opts.warmup
        name = torch.cuda.get_device_name(0) if opts.device == "cuda" else None
        peak = peak_flops(name, opts.peak_tflops)
        path = resolve_preset(opts.preset)
        print(f"# {path.name} on {name or 'cpu'}; {total - opts.warmup} timed steps after {opts.warmup} warm-up",
              flush=True)
        results = []
        for compiled in {"off": (False,), "on": (True,), "both": (False, True)}[opts.compile]:
            preset = bench_preset(path, opts.sets, total, opts.warmup, compiled, opts.device)
            results.append(run_case(preset, opts.warmup, compiled, peak, opts.flops_per_token))
            print(format_case(results[-1]), flush=True)
        if opts.json:
            Path(opts.json).write_text(json.dumps({"preset": path.name, "device": name or "cpu",
                                                   "torch": torch.__version__, "cases": results}, indent=2))
    except TuitrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
