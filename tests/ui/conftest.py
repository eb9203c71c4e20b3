"""Run directories written by the tests themselves (run.json + metrics.jsonl; no training)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

T0 = 1_764_300_000.0


def write_run(root: Path, name: str, *, state: str = "finished", step: int = 50, max_steps: int = 100,
              loss: float = 2.5, preset: str = "quickstart", started: float = T0, ended: float | None = T0 + 100,
              checkpoints: tuple[int, ...] = ()) -> Path:
    """A run directory as the runs package would leave it after a run that is not alive."""
    run_dir = root / name.replace("/", "_").replace("[", "_").replace("]", "_")
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "id": run_dir.name, "name": name, "state": state, "pid": None, "pgid": None,
        "launcher": "local", "preset_name": preset, "started": started, "ended": ended,
        "exit_code": 0 if state == "finished" else 1,
    }))
    events = [{"v": 1, "kind": "start", "t": started, "max_steps": max_steps, "world_size": 1, "step": 0}]
    events += [{"kind": "train", "t": started + s, "step": s, "loss": loss + (step - s) / 100} for s in range(10, step + 1, 10)]
    for c in checkpoints:
        (run_dir / f"checkpoint-{c}").mkdir()
        events.append({"kind": "checkpoint", "t": started + c, "step": c, "path": f"checkpoint-{c}", "bytes": 10})
    events.append({"kind": "status", "t": ended or started, "state": state, "error": None})
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return run_dir


@pytest.fixture(autouse=True)
def isolated_state(tmp_path, monkeypatch):
    """Keep the runs registry (XDG state), the settings (XDG config) and the runs root inside
    the test's folder; draw in UTF-8 and in colour whatever the machine's locale."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TUITRAIN_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def runs_root(tmp_path) -> Path:
    root = tmp_path / "runs"
    root.mkdir()
    return root


@pytest.fixture
def snapshot_root() -> Path:
    """A fixed path, so that the status line of a snapshot is the same on every machine."""
    root = Path(tempfile.gettempdir()) / "tuitrain-ui-snapshot-runs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def anyio_backend() -> str:
    """Pilot tests run on asyncio (through anyio's pytest plugin)."""
    return "asyncio"
