"""Smoke test of bench/gpu_bench.py (the Python part of bench/gpu_check.sh) on CPU, tiny."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = ["task.options.block_size=16", "task.options.n_layer=1", "task.options.n_head=2",
        "task.options.n_embd=32", "core.per_device_train_batch_size=4",
        "core.gradient_accumulation_steps=2", "precision.bf16=false", "precision.tf32=false",
        'optimizer.optim="adamw_torch"', "dataloader.dataloader_num_workers=0",
        "dataloader.dataloader_pin_memory=false"]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
LINE = re.compile(rf"^eager +hand +{NUMBER} tokens/s +engine +{NUMBER} tokens/s +"
                  rf"MFU hand +{NUMBER}% engine +{NUMBER}% +ratio {NUMBER}x$")

# Runs main() in a fresh interpreter, then fails if the bench pulled in a UI package the
# lent GPU machines do not have.
SCRIPT = """
import sys
sys.path.insert(0, "bench")
import gpu_bench
code = gpu_bench.main(sys.argv[1:])
ui = sorted(m for m in ("textual", "tomlkit", "plotext") if m in sys.modules)
sys.exit(f"imported {ui}" if ui else code)
"""


def test_gpu_bench_prints_rates_mfu_and_ratio_on_cpu():
    argv = ["--preset", "gpt-small", "--device", "cpu", "--threads", "1", "--steps", "6",
            "--warmup", "3", "--peak-tflops", "0.001"]
    for item in TINY:
        argv += ["--set", item]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The engine's progress lines ("step N/M | ...") share stdout with the results.
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("eager", "compiled"))]
    assert len(lines) == 1, proc.stdout
    match = LINE.match(lines[0])
    assert match, lines[0]
    hand, engine, mfu_hand, mfu_engine, ratio = map(float, match.groups())
    assert hand > 0 and engine > 0 and mfu_hand > 0 and mfu_engine > 0
    assert abs(ratio - engine / hand) < 0.01


def test_gpu_bench_refuses_a_missing_preset_in_one_line():
    proc = subprocess.run([sys.executable, "bench/gpu_bench.py", "--preset", "no-such-preset", "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --preset no-such-preset: no such file and no presets/no-such-preset.toml"]
