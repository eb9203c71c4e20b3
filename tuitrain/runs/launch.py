"""Launching, resuming, stopping and killing runs; every spawn is a detached supervisor."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable

from tuitrain.errors import TuitrainError
from tuitrain.runs.registry import RunInfo, find_run, record_launched, run_info
from tuitrain.runs.rundir import (
    PRESET_TOML, STDOUT_LOG, atomic_write_text, create_run_dir, read_run_json, update_run_json,
)
from tuitrain.runs.state import is_alive, process_start_time
from tuitrain.runs.torchrun import other_node_commands, torchrun_argv

__all__ = ["launch", "resume", "stop", "kill", "delete", "start_supervised", "engine_argv",
           "torchrun_argv", "other_node_commands", "latest_checkpoint", "WrongStateError"]

ACTIVE = ("queued", "running", "stopping")
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


class WrongStateError(TuitrainError):
    """The run is not in a state that allows the asked operation."""


def _as_info(run: RunInfo | str | Path) -> RunInfo:
    return run if isinstance(run, RunInfo) else find_run(run)


def engine_argv(preset: Any, run_dir: Path, resume_from: str | None = None) -> list[str]:
    """The trainer command for `preset`: local `python -m tuitrain.engine` or torchrun."""
    launcher = getattr(getattr(preset, "launch", None), "launcher", "local") or "local"
    if launcher == "torchrun":
        return torchrun_argv(preset, run_dir, resume_from)
    if launcher != "local":
        raise TuitrainError(f"launch.launcher: unknown launcher {launcher!r} (use 'local' or 'torchrun')")
    argv = [sys.executable, "-m", "tuitrain.engine", str(run_dir)]
    if resume_from:
        argv += ["--resume-from", str(resume_from)]
    return argv


def _launch_env(preset: Any) -> dict[str, str]:
    launch = getattr(preset, "launch", None)
    env: dict[str, str] = {}
    extra = getattr(launch, "env", None) or {}
    env.update({str(k): str(v) for k, v in dict(extra).items()})
    devices = getattr(launch, "visible_devices", None)
    if devices not in (None, ""):
        env["CUDA_VISIBLE_DEVICES"] = str(devices)
    return env


def start_supervised(run_dir: Path, argv: list[str], env: dict[str, str] | None = None) -> int:
    """Spawn the detached supervisor for `argv` in `run_dir`; returns the supervisor's pid.

    The supervisor gets its own session (no controlling terminal: a closed SSH session or a
    killed launcher does not reach it) and writes stdout/stderr to `stdout.log`.
    """
    run_dir = Path(run_dir)
    full_env = dict(os.environ)
    full_env.update(env or {})
    package_root = str(Path(__file__).resolve().parents[2])
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, full_env.get("PYTHONPATH", "")) if p)
    with open(run_dir / STDOUT_LOG, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tuitrain.runs.supervise", str(run_dir), "--", *argv],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env=full_env, close_fds=True,
        )
    update_run_json(run_dir, argv=argv, supervisor_pid=proc.pid,
                    supervisor_started=process_start_time(proc.pid))
    record_launched(run_dir)
    return proc.pid


def _wait_started(run_dir: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if read_run_json(run_dir).get("state") != "queued":
            return
        time.sleep(0.05)


def launch(preset_path: str | Path, overrides: Iterable[str] = (), output_dir: str | Path | None = None,
           detach: bool = True) -> RunInfo:
    """Create a run directory for the preset and start its trainer detached.

    With `detach=False` it returns once the trainer is spawned, so the caller can follow it.
    """
    from tuitrain.config import load_preset
    from tuitrain.runs.resume_source import resolve_resume_source

    preset = load_preset(Path(preset_path), list(overrides))
    resolve_resume_source(preset)  # "last" -> a path; a missing checkpoint is refused before mkdir
    run_dir = create_run_dir(preset, output_dir=output_dir)
    argv = engine_argv(preset, run_dir)
    start_supervised(run_dir, argv, _launch_env(preset))
    if not detach:
        _wait_started(run_dir)
    return run_info(run_dir)


def latest_checkpoint(run_dir: Path) -> str | None:
    """The name of the newest complete `checkpoint-N/` in `run_dir`, or None."""
    best: tuple[int, str] | None = None
    for child in Path(run_dir).iterdir():
        match = _CHECKPOINT.match(child.name)
        if match and child.is_dir() and (best is None or int(match[1]) > best[0]):
            best = (int(match[1]), child.name)
    return best[1] if best else None


def _rewrite_preset(run_dir: Path, overrides: list[str]) -> Any:
    from tuitrain.config import load_preset

    current = run_dir / PRESET_TOML
    preset = load_preset(current, overrides)
    n = 1
    while (run_dir / f"preset.prev-{n}.toml").exists():
        n += 1
    shutil.copy2(current, run_dir / f"preset.prev-{n}.toml")
    atomic_write_text(current, preset.to_toml())
    return preset


def resume(run: RunInfo | str | Path, checkpoint: str | None = None, overrides: Iterable[str] = (),
           detach: bool = True) -> RunInfo:
    """Continue a stopped, finished or failed run in its own directory from a checkpoint."""
    info = _as_info(run)
    if info.state in ACTIVE:
        raise WrongStateError(f"run {info.name} is {info.state}; stop it before resuming")
    run_dir = info.run_dir
    checkpoint = checkpoint or latest_checkpoint(run_dir)
    if checkpoint is None:
        raise WrongStateError(f"run {info.name} has no checkpoint to resume from")
    checkpoint = Path(checkpoint).name
    if not (run_dir / checkpoint).is_dir():
        raise TuitrainError(f"{run_dir / checkpoint}: no such checkpoint (see the run's checkpoint-N folders)")
    from tuitrain.config import load_preset

    overrides = list(overrides)
    preset = _rewrite_preset(run_dir, overrides) if overrides else load_preset(run_dir / PRESET_TOML)
    # the time trained so far, so that elapsed (in `ls` and the app) goes on from it
    update_run_json(run_dir, state="queued", resumed_from=checkpoint, pid=None, pgid=None,
                    pid_started=None, exit_code=None, ended=None, error=None,
                    trained_before=run_info(run_dir).elapsed_s)
    start_supervised(run_dir, engine_argv(preset, run_dir, checkpoint), _launch_env(preset))
    if not detach:
        _wait_started(run_dir)
    return run_info(run_dir)


def stop(run: RunInfo | str | Path) -> RunInfo:
    """Ask the trainer to stop gracefully (SIGTERM to its group leader: it checkpoints)."""
    info = _as_info(run)
    data = read_run_json(info.run_dir)
    if info.state not in ("running", "stopping") or not is_alive(data.get("pid"), data.get("pid_started")):
        raise WrongStateError(f"run {info.name} is {info.state}, not running: nothing to stop")
    os.kill(int(data["pid"]), signal.SIGTERM)
    update_run_json(info.run_dir, state="stopping")
    return run_info(info.run_dir)


def kill(run: RunInfo | str | Path) -> RunInfo:
    """SIGKILL the trainer's whole process group (no checkpoint); the run ends failed."""
    info = _as_info(run)
    data = read_run_json(info.run_dir)
    pid, pgid = data.get("pid"), data.get("pgid")
    if info.state not in ACTIVE or not is_alive(pid, data.get("pid_started")):
        raise WrongStateError(f"run {info.name} is {info.state}, not running: nothing to kill")
    try:
        os.killpg(int(pgid or pid), signal.SIGKILL)
    except ProcessLookupError:
        pass
    if not is_alive(data.get("supervisor_pid"), data.get("supervisor_started")):
        update_run_json(info.run_dir, state="failed", ended=time.time(), exit_code=-9,
                        error="killed by signal SIGKILL (tuitrain kill)")
    return run_info(info.run_dir)


def delete(run: RunInfo | str | Path) -> None:
    """Remove a run directory that is not active."""
    info = _as_info(run)
    if info.state in ACTIVE:
        raise WrongStateError(f"run {info.name} is {info.state}; stop or kill it first")
    shutil.rmtree(info.run_dir)
