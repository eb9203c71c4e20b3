"""Shared helpers for the reliability tests: real tiny `regression` runs in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test gets its own runs root and registry, and one-thread torch in subprocesses."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TUITRAIN_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("MKL_NUM_THREADS", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p))
    return tmp_path


def write_preset(path: Path, *, max_steps: int = 6, save_steps: int = 1, hidden: int = 8,
                 n_features: int = 4, extra: str = "") -> Path:
    """A tiny deterministic regression preset; `hidden`/`n_features` size its checkpoints."""
    path.write_text(f"""
[task]
name = "regression"

[task.options]
n_samples = 64
n_features = {n_features}
hidden = {hidden}
noise = 0.1

[core]
per_device_train_batch_size = 8
max_steps = {max_steps}

[optimizer]
learning_rate = 0.01

[logging]
logging_steps = 1
save_strategy = "steps"
save_steps = {save_steps}

[reproducibility]
seed = 7
{extra}
""", encoding="utf-8")
    return path


def new_run(tmp: Path, name: str, **preset_kw) -> Path:
    """A run directory (frozen preset.toml, run.json) created the way `tuitrain run` does."""
    from tuitrain.config import load_preset
    from tuitrain.runs.rundir import create_run_dir

    preset = write_preset(tmp / f"{name}.toml", **preset_kw)
    return create_run_dir(load_preset(preset), output_dir=tmp / "runs" / name)


def engine_cmd(run_dir: Path, resume_from: str | None = None) -> list[str]:
    argv = [sys.executable, "-m", "tuitrain.engine", str(run_dir)]
    return argv + (["--resume-from", resume_from] if resume_from else [])


def run_engine(run_dir: Path, resume_from: str | None = None, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(engine_cmd(run_dir, resume_from), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, **kw)


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m tuitrain ARGS`, capturing bytes-exact text output."""
    return subprocess.run([sys.executable, "-m", "tuitrain", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def events(run_dir: Path) -> list[dict]:
    out = []
    if not (run_dir / "metrics.jsonl").exists():
        return out
    for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def losses(run_dir: Path) -> dict[int, float]:
    """Step → loss as RunHistory sees the run (resumed segments folded)."""
    from tuitrain.runs.history import RunHistory

    history = RunHistory(run_dir)
    history.update()
    series = history.series["loss"]
    steps = [int(x) for x in series.xs]
    assert len(steps) == len(set(steps)), f"duplicated steps in history: {steps}"
    return dict(zip(steps, series.ys))


# -- a second user --------------------------------------------------------------------------------

NOBODY = 65534  # a real other uid on every Linux box; the tests that use it need root
needs_root = pytest.mark.skipif(os.getuid() != 0 or not Path("/usr/bin/setpriv").exists(),
                                reason="acting as a second user needs root and setpriv")


def as_user(uid: int, argv: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
    """Run `argv` as `uid` (real and effective, no supplementary groups) with `setpriv`."""
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv],
                          capture_output=True, text=True, timeout=timeout, cwd="/", **kw)


@pytest.fixture
def shared_tmp():
    """A folder every user can reach (pytest's own tmp folder is root's only)."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tuitrain-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    """The single stderr line of a refused command (exit 1, no traceback)."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]
