"""Engine tokens/s and MFU against the hand-written loop of `engine_bench.py`, on any preset.

One line per case (eager, compiled): tokens/s of each side, MFU of each side and the
engine/hand ratio. Warm-up steps (compilation, allocator, loader start) are left out of
both sides' timings.

    PYTHONPATH=. python bench/gpu_bench.py --preset gpt-small --device cuda --compile both
    PYTHONPATH=. python bench/gpu_bench.py --preset quickstart --set core.max_steps=20 --device cpu
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import hand_loop  # noqa: E402

from tuitrain.config import load_preset  # noqa: E402
from tuitrain.engine.trainer import Trainer  # noqa: E402
from tuitrain.errors import TuitrainError  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
# Dense bf16 tensor-core peaks (no sparsity), by a substring of the GPU's name.
PEAKS = (("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12), ("A100", 312e12))


def resolve_preset(name: str) -> Path:
    """A preset file: a path as given, else `presets/NAME.toml` of this checkout."""
    path = Path(name)
    if path.is_file():
        return path
    bundled = REPO / "presets" / f"{name}.toml"
    if bundled.is_file():
        return bundled
    raise TuitrainError(f"--preset {name}: no such file and no presets/{name}.toml")


def peak_flops(device: torch.device, peak_tflops: float | None) -> float | None:
    """The device's bf16 peak in FLOP/s: --peak-tflops, else looked up by GPU name."""
    if peak_tflops:
        return peak_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in PEAKS:
        if key in name:
            return peak
    raise TuitrainError(f"unknown peak bf16 FLOP/s for GPU {name!r}; pass --peak-tflops")


def flops_per_token(model: torch.nn.Module, options: dict) -> float:
    """Training FLOPs per token, as nanoGPT's estimate_mfu: 6N plus attention 12·L·d·T."""
    n_params = sum(p.numel() for p in model.parameters())
    attention = 12 * int(options.get("n_layer", 0)) * int(options.get("n_embd", 0)) * int(options.get("block_size", 0))
    return 6 * n_params + attention


def bench_overrides(steps: int, warmup: int, compiled: bool, device: str) -> list[str]:
    """What the bench sets on top of the preset and the user's --set: no eval, saving or
    samples; a train event after the warm-up and at the end, read for the engine's timing."""
    return [f"core.max_steps={steps}", f"logging.logging_steps={warmup}", 'logging.eval_strategy="no"',
            'logging.save_strategy="no"', "evaluation.sample_every=0",
            f"precision.torch_compile={'true' if compiled else 'false'}",
            f"distributed.use_cpu={'true' if device == 'cpu' else 'false'}"]


def engine_tokens(preset, warmup: int) -> tuple[int, float]:
    """(steps timed, seconds) of the engine, between its train events at `warmup` and the end."""
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(preset, Path(run_dir))
        t0 = time.perf_counter()
        code = trainer.train()
        elapsed = time.perf_counter() - t0
        steps = trainer.state.global_step
        trainer.close()
        if code != 0:
            raise TuitrainError("the engine's run failed (see the traceback above)")
        events = [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    train = [e for e in events if e.get("kind") == "train"]
    if len(train) < 2:
        return steps, elapsed
    return train[-1]["step"] - train[0]["step"], train[-1]["t"] - train[0]["t"]


def run_case(path: Path, user_sets: list[str], steps: int, warmup: int, compiled: bool, device: str,
             peak: float | None) -> str:
    """One line: hand and engine tokens/s, their MFU and the ratio, for one compile setting."""
    preset = load_preset(path, [*user_sets, *bench_overrides(steps, warmup, compiled, device)])
    args = preset.args
    tokens_per_step = (int(args.per_device_train_batch_size) * int(args.gradient_accumulation_steps)
                       * int(preset.task.options.get("block_size", 1)))
    hand_steps, hand_s = hand_loop(preset, warmup, compile_model=compiled)
    eng_steps, eng_s = engine_tokens(preset, warmup)
    hand, engine = hand_steps * tokens_per_step / hand_s, eng_steps * tokens_per_step / eng_s
    from tuitrain.engine.tasks import build_task
    per_token = flops_per_token(build_task(preset.task, args).model, preset.task.options)

    def mfu(rate: float) -> str:
        return f"{100 * rate * per_token / peak:5.1f}%" if peak else "  n/a"

    label = "compiled" if compiled else "eager"
    return (f"{label:<9} hand {hand:12.1f} tokens/s  engine {engine:12.1f} tokens/s  "
            f"MFU hand {mfu(hand)} engine {mfu(engine)}  ratio {engine / hand:.3f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="gpt-small", help="a preset name in presets/ or a path")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="GROUP.KEY=VALUE")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--compile", choices=("off", "on", "both"), default="off")
    parser.add_argument("--steps", type=int, default=60, help="timed steps after the warm-up")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--peak-tflops", type=float, default=None, help="bf16 peak for MFU (default: by GPU name)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
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
        device = torch.device("cuda", 0) if opts.device == "cuda" else torch.device("cpu")
        peak = peak_flops(device, opts.peak_tflops)
        path = resolve_preset(opts.preset)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"# {path.name} on {name}; {total - opts.warmup} timed steps after {opts.warmup} warm-up", flush=True)
        cases = {"off": (False,), "on": (True,), "both": (False, True)}[opts.compile]
        for compiled in cases:
            print(run_case(path, opts.sets, total, opts.warmup, compiled, opts.device, peak), flush=True)
    except TuitrainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
