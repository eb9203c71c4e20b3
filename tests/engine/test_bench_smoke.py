"""The GPU bench's workload check and a CPU smoke run of bench/gpu_bench.py and bench/gpu_check.sh.

What makes the bench fair is checked on CPU: one epoch covers every timed step with full
batches (gpt-small's own epoch is 13 steps ending in a batch of one), each side compiles
after a compiler reset and never inside its timed steps, FLOPs come from the model's config
(6N + 12·L·d·T) and NVL parts are not counted at the SXM peak.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import gpu_bench  # noqa: E402

from tuitrain.config import load_preset  # noqa: E402
from tuitrain.engine.tasks import build_task  # noqa: E402
from tuitrain.engine.tasks.gpt import GPT, GPTConfig  # noqa: E402

TINY = ["task.options.block_size=16", "task.options.n_layer=1", "task.options.n_head=2",
        "task.options.n_embd=32", "core.per_device_train_batch_size=4",
        "core.gradient_accumulation_steps=2", "precision.bf16=false", "precision.tf32=false",
        'optimizer.optim="adamw_torch"', "dataloader.dataloader_num_workers=0",
        "dataloader.dataloader_pin_memory=false"]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
LINE = re.compile(rf"^(eager|compiled) +hand +{NUMBER} tokens/s +engine +{NUMBER} tokens/s +"
                  rf"MFU hand +{NUMBER}% engine +{NUMBER}% +ratio {NUMBER}x +"
                  rf"recompiles in timed steps hand (\d+) engine (\d+)$")
SMALL_GPT = ["task.options.n_layer=1", "task.options.n_embd=32", "task.options.n_head=2"]

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


def test_gpt_small_workload_is_one_epoch_of_full_batches():
    path = gpu_bench.resolve_preset("gpt-small")
    plain = load_preset(path, [*SMALL_GPT, "core.max_steps=70"])
    problems = gpu_bench.workload_problems(plain, build_task(plain.task, plain.args))
    assert len(problems) == 2 and "a loader restarts inside the timing" in problems[0]  # the preset's own epoch
    preset = gpu_bench.bench_preset(path, SMALL_GPT, 70, 10, False, "cpu")
    bundle = build_task(preset.task, preset.args)
    assert gpu_bench.workload_problems(preset, bundle) == []
    assert len(bundle.train_dataset) == 70 * 16 * 4 and preset.args.dataloader_drop_last
    assert bundle.tokens_per_example == 512


def test_flops_per_token_come_from_the_model_config():
    model = GPT(GPTConfig(vocab_size=100, block_size=32, n_layer=2, n_head=2, n_embd=64))
    n = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()  # wte is lm_head's weight
    assert gpu_bench.matmul_parameters(model) == n
    assert gpu_bench.flops_per_token(model) == 6 * n + 12 * 2 * 64 * 32
    with pytest.raises(Exception, match="--flops-per-token"):
        gpu_bench.flops_per_token(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name,tflops", [("NVIDIA H100 NVL", 835), ("NVIDIA H100 80GB HBM3", 989),
                                         ("NVIDIA H100 PCIe", 756), ("NVIDIA H200 NVL", 835), ("NVIDIA H200", 989),
                                         ("NVIDIA GH200 480GB", 989), ("NVIDIA A100-SXM4-80GB", 312)])
def test_peaks_tell_nvl_pcie_and_sxm_apart(name, tflops):
    assert gpu_bench.peak_flops(name, None) == tflops * 1e12


def test_unknown_gpu_needs_a_peak():
    with pytest.raises(Exception, match="--peak-tflops"):
        gpu_bench.peak_flops("NVIDIA Tesla T4", None)
    assert gpu_bench.peak_flops("NVIDIA Tesla T4", 65.0) == 65e12 and gpu_bench.peak_flops(None, None) is None


def test_gpu_bench_compiles_each_side_outside_its_timed_steps(tmp_path):
    """Both sides compile (a reset between them: the engine does not reuse the hand loop's
    graphs) and neither compiles inside its timed steps."""
    out = tmp_path / "bench.json"
    argv = ["--preset", "gpt-small", "--device", "cpu", "--threads", "1", "--steps", "6", "--warmup", "3",
            "--peak-tflops", "0.001", "--compile", "on", "--json", str(out)]
    for item in [*TINY, 'precision.torch_compile_backend="eager"']:
        argv += ["--set", item]
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The engine's progress lines ("step N/M | ...") share stdout with the results.
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("eager", "compiled"))]
    assert len(lines) == 1, proc.stdout
    match = LINE.match(lines[0])
    assert match, lines[0]
    case, hand, engine, mfu_hand, mfu_engine, ratio, timed_hand, timed_engine = match.groups()
    assert case == "compiled" and float(hand) > 0 and float(engine) > 0 and float(mfu_hand) > 0
    assert abs(float(ratio) - float(engine) / float(hand)) < 0.01
    (figures,) = json.loads(out.read_text())["cases"]
    assert figures["hand"]["compiles"] >= 1 and figures["engine"]["compiles"] >= 1
    assert figures["hand"]["compiles_timed"] == figures["engine"]["compiles_timed"] == 0
    assert figures["tokens_per_step"] == 4 * 2 * 16 and figures["timed_steps"] == 6


def test_the_compiler_is_reset_before_each_side(monkeypatch):
    order = []
    real_reset, real_hand, real_trainer = torch._dynamo.reset, gpu_bench.hand_loop, gpu_bench.Trainer

    def reset():
        order.append("reset")
        real_reset()

    def hand(*args, **kwargs):
        order.append("hand")
        return real_hand(*args, **kwargs)

    def trainer(*args, **kwargs):
        order.append("engine")
        return real_trainer(*args, **kwargs)

    monkeypatch.setattr(torch._dynamo, "reset", reset)
    monkeypatch.setattr(gpu_bench, "hand_loop", hand)
    monkeypatch.setattr(gpu_bench, "Trainer", trainer)
    preset = gpu_bench.bench_preset(gpu_bench.resolve_preset("gpt-small"), TINY, 4, 2, False, "cpu")
    result = gpu_bench.run_case(preset, 2, False, None, None)
    assert order == ["reset", "hand", "reset", "engine"]
    assert result["timed_steps"] == 2 and result["mfu_hand"] is None


def test_gpu_bench_refuses_an_eager_case_that_would_compile():
    argv = ["--preset", "gpt-small", "--device", "cpu", "--compile", "off", "--set", 'precision.torch_compile_mode="default"']
    proc = subprocess.run([sys.executable, "bench/gpu_bench.py", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 2 and "use --compile on" in proc.stderr


def test_gpu_bench_refuses_a_missing_preset_in_one_line():
    proc = subprocess.run([sys.executable, "bench/gpu_bench.py", "--preset", "no-such-preset", "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["error: --preset no-such-preset: no such file and no presets/no-such-preset.toml"]


def test_gpu_check_runs_on_python3_without_ui_packages(tmp_path):
    """bench/gpu_check.sh finds `python3` when there is no `python`, and its environment
    check and telemetry probe run (and report no GPU) where textual, plotext and tomlkit
    cannot be imported."""
    bin_dir, block = tmp_path / "bin", tmp_path / "block"
    bin_dir.mkdir()
    block.mkdir()
    python3 = bin_dir / "python3"  # a wrapper, not a link: a link would leave the virtual environment
    python3.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python3.chmod(0o755)
    for tool in ("bash", "dirname", "env"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}" if Path(f"/usr/bin/{tool}").exists() else f"/bin/{tool}")
    (block / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('textual', 'plotext', 'tomlkit'):\n"
        "            raise ImportError(name + ' is not on the GPU image')\n"
        "sys.meta_path.insert(0, Block())\n")
    out = tmp_path / "out"
    env = {"PATH": str(bin_dir), "PYTHONPATH": str(block), "OUT": str(out), "HOME": str(tmp_path)}
    proc = subprocess.run(["bash", str(REPO / "bench" / "gpu_check.sh"), "--only", "env,telemetry"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = (out / "summary.txt").read_text().splitlines()
    assert [line.split()[:2] for line in summary] == [["env", "ok"], ["telemetry", "ok"]]
    env_result = json.loads((out / "env.json").read_text())
    assert env_result["ui_packages_importable"] == [] and env_result["torch"] == torch.__version__
    if not torch.cuda.is_available():
        assert json.loads((out / "telemetry.json").read_text())["reason"].startswith("no NVIDIA GPU")
