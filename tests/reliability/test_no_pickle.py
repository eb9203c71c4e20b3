"""No pickle, proven, through the CLI: a checkpoint holding a malicious pickle (one that creates
a folder when it is unpickled) is refused without `--allow-foreign-checkpoint` and refused by
`torch.load(weights_only=True)` with it; the flag exists and takes a harmless foreign
checkpoint's weights; pickles planted in one of our own checkpoints are never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.reliability.conftest import cli, events, new_run, one_line_error, run_engine, write_preset
from tuitrain.engine.tasks.regression import MLP


class Payload:
    """Unpickling this creates `marker`: what a malicious checkpoint would run."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _foreign(folder: Path, state: dict) -> Path:
    """A transformers-style checkpoint folder: weights as `pytorch_model.bin` (a pickle)."""
    folder.mkdir(parents=True)
    torch.save(state, folder / "pytorch_model.bin")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 5, "log_history": []}))
    return folder


@pytest.fixture
def malicious(isolated) -> tuple[Path, Path]:
    marker = isolated / "pwned"
    folder = _foreign(isolated / "hf" / "checkpoint-5", {**MLP(4, 8).state_dict(), "extra": Payload(str(marker))})
    return folder, marker


def test_the_payload_really_runs_when_unpickled(malicious):
    folder, marker = malicious
    torch.load(folder / "pytorch_model.bin", weights_only=False)  # what no code path of tuitrain does
    assert marker.is_dir()


def test_a_malicious_pickle_is_refused_without_the_flag(malicious, isolated):
    folder, marker = malicious
    preset = write_preset(isolated / "p.toml", save_steps=1, max_steps=1)
    line = one_line_error(cli("run", str(preset), "--set", f'core.resume_from_checkpoint="{folder}"'))
    assert line == (f"tuitrain: core.resume_from_checkpoint: {folder}: not a tuitrain checkpoint (no model.safetensors, "
                    "tuitrain_state.json); to start from its weights alone, pass --allow-foreign-checkpoint (a pickle "
                    "is read only with torch.load(weights_only=True))")
    assert not marker.exists() and not (isolated / "runs").exists()  # nothing created, nothing run


def test_with_the_flag_weights_only_refuses_it(malicious, isolated):
    folder, marker = malicious
    preset = write_preset(isolated / "p.toml", save_steps=1, max_steps=1)
    out = cli("run", str(preset), "--set", f'core.resume_from_checkpoint="{folder / "pytorch_model.bin"}"',
              "--allow-foreign-checkpoint", timeout=120)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert not marker.exists()
    (run_dir,) = (isolated / "runs").iterdir()
    (failed,) = [e for e in events(run_dir) if e["kind"] == "status" and e["state"] == "failed"]
    assert "cannot be read with weights_only=True" in failed["error"] and "\n" not in failed["error"]
    assert not [e for e in events(run_dir) if e["kind"] == "train"]


def test_with_the_flag_a_harmless_foreign_checkpoint_gives_its_weights(isolated):
    torch.manual_seed(0)
    weights = {k: torch.randn_like(v) for k, v in MLP(4, 8).state_dict().items()}
    folder = _foreign(isolated / "hf" / "checkpoint-5", weights)
    preset = write_preset(isolated / "p.toml", save_steps=1, max_steps=1)
    out = cli("run", str(preset), "--set", f'core.resume_from_checkpoint="{folder}"', "--set",
              "optimizer.learning_rate=0.0", "--allow-foreign-checkpoint", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    (run_dir,) = (isolated / "runs").iterdir()
    warnings = [e["message"] for e in events(run_dir) if e["kind"] == "warning"]
    assert any("a foreign checkpoint" in w and "step 0" in w for w in warnings), warnings
    model = MLP(4, 8)
    from tuitrain.engine.checkpoint import load_checkpoint

    load_checkpoint(run_dir / "checkpoint-1", model, restore_rng=False)  # a learning rate of 0: unchanged
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())


def test_pickles_planted_in_our_own_checkpoint_are_never_read(isolated):
    marker = isolated / "pwned"
    run_dir = new_run(isolated, "ours", max_steps=2, save_steps=2)
    assert run_engine(run_dir).returncode == 0
    for name in ("pytorch_model.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"x": Payload(str(marker))}, run_dir / "checkpoint-2" / name)
    from tuitrain.runs.rundir import update_run_json

    update_run_json(run_dir, state="finished", exit_code=0, ended=1.0)
    out = cli("resume", str(run_dir), "--set", "core.max_steps=3", timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not marker.exists()
    assert [e["step"] for e in events(run_dir) if e["kind"] == "train"][-1] == 3
