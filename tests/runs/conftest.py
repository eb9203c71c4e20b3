from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tuitrain.runs.rundir import prepare_output_dir, update_run_json

FAKE = str(Path(__file__).with_name("fake_trainer.py"))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test gets its own runs root and registry."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("TUITRAIN_RUNS", str(tmp_path / "runs"))
    return tmp_path


def make_run(root: Path, name: str = "r1") -> Path:
    run_dir = root / "runs" / name
    prepare_output_dir(run_dir, overwrite=False)
    update_run_json(run_dir, name=name, state="queued", launcher="local", preset_name="fake",
                    created=time.time())
    return run_dir.resolve()


def fake_argv(run_dir: Path, steps: int = 200, pause: float = 0.05, *extra: str) -> list[str]:
    return [sys.executable, FAKE, str(run_dir), str(steps), str(pause), *extra]


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met within %.1fs" % timeout)
