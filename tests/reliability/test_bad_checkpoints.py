"""Bad checkpoints through the real resume path, and a checkpoint save on a full disk."""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import signal
import time

import pytest

from tests.reliability.conftest import cli, events, new_run, run_engine
from tuitrain.runs.rundir import update_run_json


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """A finished two-step run with checkpoint-1 and checkpoint-2 (trained once per module)."""
    tmp = tmp_path_factory.mktemp("trained")
    run_dir = new_run(tmp, "good", max_steps=2, save_steps=1)
    done = run_engine(run_dir)
    assert done.returncode == 0, done.stderr
    assert (run_dir / "checkpoint-2" / "trainer_state.json").is_file()
    return run_dir


@pytest.fixture
def trained(trained_once, isolated):
    """A private copy of the trained run for one test to damage."""
    run_dir = isolated / "runs" / "good"
    shutil.copytree(trained_once, run_dir)
    return run_dir


def _refused(run_dir, checkpoint, via_cli=False):
    before = len(events(run_dir))
    if via_cli:
        out = cli("resume", str(run_dir), "--checkpoint", checkpoint)
    else:
        out = run_engine(run_dir, checkpoint)
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    new = events(run_dir)[before:]
    failed = [e for e in new if e.get("kind") == "status"]
    assert failed and failed[-1]["state"] == "failed", new
    assert not [e for e in new if e.get("kind") in ("train", "checkpoint")], "a refused checkpoint trained"
    error = failed[-1]["error"]
    assert "\n" not in error and checkpoint in error
    if not via_cli:
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and checkpoint in lines[0], out.stderr
    return error


def test_truncated_safetensors_is_refused(trained):
    weights = trained / "checkpoint-2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    assert "refused" in _refused(trained, "checkpoint-2")


def test_tampered_json_is_refused(trained):
    state = trained / "checkpoint-2" / "trainer_state.json"
    data = json.loads(state.read_text())
    del data["global_step"]
    state.write_text(json.dumps(data))
    _refused(trained, "checkpoint-2")


def test_unparseable_trainer_state_is_refused(trained):
    (trained / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2, ')
    _refused(trained, "checkpoint-2")


def test_checkpoint_of_a_different_model_is_refused_by_tuitrain_resume(trained, isolated):
    other = new_run(isolated, "wider", max_steps=2, save_steps=1, hidden=16)
    shutil.copytree(trained / "checkpoint-2", other / "checkpoint-2")
    # Its recorded config claims the new width, so only the weights themselves can tell.
    state_file = other / "checkpoint-2" / "tuitrain_state.json"
    state = json.loads(state_file.read_text())
    assert state["config"]["task.options.hidden"] == 8
    state["config"]["task.options.hidden"] = 16
    state_file.write_text(json.dumps(state))
    update_run_json(other, state="finished", exit_code=0, started=time.time() - 5, ended=time.time())
    error = _refused(other, "checkpoint-2", via_cli=True)
    assert "refused" in error and "shape (8, 4) in the checkpoint, (16, 4) in the model" in error


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_full_disk_fails_the_save_keeps_older_checkpoints_and_training_goes_on(isolated):
    from tuitrain.engine.checkpoint import list_checkpoints

    run_dir = new_run(isolated, "full", max_steps=4, save_steps=2, hidden=2048, n_features=64)
    done = run_engine(run_dir)
    assert done.returncode == 0, done.stderr
    shutil.rmtree(run_dir / "checkpoint-4")  # the save that will meet the full disk
    kept, final = _digest(run_dir / "checkpoint-2"), _digest(run_dir / "final")
    assert (run_dir / "checkpoint-2" / "model.safetensors").stat().st_size > 256 * 1024
    before = len(events(run_dir))
    out = run_engine(run_dir, "checkpoint-2", preexec_fn=_limit_file_size(256 * 1024))
    # The preset has no stop-on-save-failure setting: the engine warns and trains to the end.
    assert out.returncode == 0, out.stderr
    new = events(run_dir)[before:]
    warnings = [e for e in new if e.get("kind") == "warning"]
    assert len(warnings) == 2 and [w["step"] for w in warnings] == [4, 4]
    assert "could not save checkpoint-4" in warnings[0]["message"]
    assert "older checkpoints are intact" in warnings[0]["message"]
    assert "could not save the final model" in warnings[1]["message"]  # RUN_DIR/final/ meets the same full disk
    assert _digest(run_dir / "final") == final  # the first run's final model, intact
    assert [e["step"] for e in new if e.get("kind") == "train"] == [3, 4]
    assert new[-1]["kind"] == "status" and new[-1]["state"] == "finished"
    assert not [e for e in new if e.get("kind") == "checkpoint"]
    assert [p.name for p in list_checkpoints(run_dir)] == ["checkpoint-2"]
    assert _digest(run_dir / "checkpoint-2") == kept
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".checkpoint-")]
