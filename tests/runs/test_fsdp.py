"""FSDP under torchrun with two CPU processes (gloo): the numbers of one process with the same
global batch (gradient clipping over the whole model), checkpoints that are the whole model's,
and a resume that is exact."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from tuitrain.runs import launch as L
from tuitrain.runs.registry import run_info

from .test_ddp import wait_done

# 2,100 characters: 13 eval windows of 16 (7 and 6 per rank: 4 and 3 batches of 2, so one rank
# must run an extra forward pass), 40 random training windows an epoch (5 steps of 2 × 4).
PRESET = """
[task]
name = "char_gpt"
[task.options]
text = "{text}"
block_size = 16
n_layer = 2
n_head = 2
n_embd = 16
examples_per_epoch = 40
[core]
do_train = true
per_device_train_batch_size = 4
per_device_eval_batch_size = 2
gradient_accumulation_steps = 2
max_steps = 6
[optimizer]
learning_rate = 3e-3
weight_decay = 0.1
max_grad_norm = 0.5
[logging]
logging_steps = 1
eval_strategy = "steps"
eval_steps = 3
save_strategy = "steps"
save_steps = 3
[evaluation]
sample_every = 3
sample_max_new_tokens = 4
[distributed]
ddp_backend = "gloo"
fsdp = "full_shard auto_wrap"
[reproducibility]
seed = 7
[launch]
launcher = "torchrun"
nproc_per_node = 2
"""


def _events(run_dir, kind):
    return [e for e in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if e["kind"] == kind]


@pytest.mark.timeout(240)
def test_fsdp_matches_one_process_saves_the_whole_model_and_resumes_exactly(isolated):
    text = isolated / "corpus.txt"
    text.write_text(("the quick brown fox jumps over the lazy dog; " * 50)[:2100])
    preset = isolated / "fsdp.toml"
    preset.write_text(PRESET.format(text=text))
    fsdp = L.launch(preset, output_dir=isolated / "fsdp")
    single = L.launch(preset, ['launch.launcher="local"', "launch.nproc_per_node=1", 'distributed.fsdp=""',
                               "core.per_device_train_batch_size=8"], output_dir=isolated / "single")
    for info in (fsdp, single):
        assert wait_done(info.run_dir, 180).state == "finished", (info.run_dir / "stdout.log").read_text()[-3000:]

    # The same numbers as one process: loss, and the grad norm of the whole model (clipped at 0.5).
    ours, theirs = _events(fsdp.run_dir, "train"), _events(single.run_dir, "train")
    assert [e["step"] for e in ours] == [e["step"] for e in theirs] == list(range(1, 7))
    for a, b in zip(ours, theirs):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
    assert max(e["grad_norm"] for e in ours) > 0.5
    evals = [(e["step"], e["eval_loss"]) for e in _events(fsdp.run_dir, "eval")]
    assert [s for s, _ in evals] == [3, 6]
    for (_, a), (_, b) in zip(evals, [(e["step"], e["eval_loss"]) for e in _events(single.run_dir, "eval")]):
        assert a == pytest.approx(b, rel=1e-5)
    assert [e["step"] for e in _events(fsdp.run_dir, "sample")] == [3, 6]

    # A checkpoint holds the whole model and optimizer, as one process saves them.
    for name in ("model.safetensors", "optimizer.safetensors"):
        sharded = load_file(fsdp.run_dir / "checkpoint-3" / name)
        whole = load_file(single.run_dir / "checkpoint-3" / name)
        assert sharded.keys() == whole.keys()
        for key, tensor in whole.items():
            torch.testing.assert_close(sharded[key], tensor, rtol=1e-4, atol=1e-6, msg=f"{name}: {key}")

    # Resumed under FSDP from checkpoint-3: the same steps, bit for bit.
    info = L.resume(fsdp.run_dir, "checkpoint-3")
    assert wait_done(info.run_dir, 180).state == "finished", (info.run_dir / "stdout.log").read_text()[-3000:]
    resumed = _events(fsdp.run_dir, "train")[6:]
    assert [(e["step"], e["loss"], e["grad_norm"]) for e in resumed] == \
        [(e["step"], e["loss"], e["grad_norm"]) for e in ours[3:]]
    assert run_info(fsdp.run_dir).launcher == "torchrun"
