"""Proof, before any signal, that a process is this run's supervisor or trainer; and that the
run is the caller's to control.

`run.json` is only a claim: anyone who can write it could name any pid. A process is this
run's when all of these hold:
- it is the process recorded (pid, start ticks since boot, boot id: `tuitrain.procid`);
- its command line is our supervisor for this run directory (`-m tuitrain.runs.supervise
  RUN_DIR`), or the engine for it (`-m tuitrain.engine RUN_DIR`, also under torchrun), or it
  is the child of this run's proven supervisor;
- it runs as the user who owns the run directory.
And the run directory must be owned by the caller: tuitrain never signals for, or runs the
code of, another user's run.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import Any

from tuitrain import procid
from tuitrain.errors import TuitrainError
from tuitrain.runs.state import identity_of


class IdentityError(TuitrainError):
    """tuitrain cannot prove that a process belongs to the run, so it does not signal it."""


class NotOwnerError(TuitrainError):
    """The run directory belongs to another user."""


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def dir_owner(run_dir: Path) -> int:
    """The uid owning the run directory."""
    return os.stat(run_dir).st_uid


def require_own(run_dir: Path, doing: str, trust_owner: bool = False, hint: str = "") -> None:
    """Refuse (`NotOwnerError`) a run directory, or its preset, owned by another user."""
    me = os.getuid()
    for path in (run_dir, run_dir / "preset.toml"):
        try:
            uid = os.stat(path).st_uid
        except FileNotFoundError:
            continue
        if uid != me and not trust_owner:
            raise NotOwnerError(f"{path}: owned by {_user(uid)}, not by you ({_user(me)}); "
                                f"tuitrain does not {doing} another user's run{hint}")


def _names_run(argv: list[str], module: str, run_dir: Path) -> bool:
    """Whether `argv` runs `-m module RUN_DIR` (anywhere in it: torchrun nests the engine's)."""
    for i, arg in enumerate(argv[:-2]):
        if arg == "-m" and argv[i + 1] == module:
            try:
                return Path(argv[i + 2]).resolve() == run_dir.resolve()
            except OSError:
                return False
    return False


def _check(run_dir: Path, info: dict[str, Any], role: str, module: str,
           parent: procid.Identity | None) -> tuple[procid.Identity | None, str]:
    identity = identity_of(info, role)
    if identity is None:
        return None, f"run.json records no {role} identity (pid, start ticks, boot id)"
    stat = procid.running(identity)
    if stat is None:
        return None, f"the {role} (pid {identity.pid}) is no longer running"
    argv = procid.cmdline(identity.pid) or []
    ours = _names_run(argv, module, run_dir) or (parent is not None and stat.ppid == parent.pid)
    if not ours:
        shown = " ".join(argv)[:120] or "unreadable"
        return None, f"pid {identity.pid} is not this run's {role} (its command line: {shown})"
    uid, owner = procid.owner_uid(identity.pid), dir_owner(run_dir)
    if uid != owner:
        return None, f"pid {identity.pid} runs as {_user(uid) if uid is not None else 'an unknown user'}, " \
                     f"the run directory belongs to {_user(owner)}"
    return identity, ""


def prove(run_dir: Path, info: dict[str, Any]) -> tuple[procid.Identity | None, procid.Identity | None, str]:
    """(proven supervisor, proven trainer, why a missing one could not be proven)."""
    supervisor, why_s = _check(run_dir, info, "supervisor", "tuitrain.runs.supervise", None)
    trainer, why_t = _check(run_dir, info, "trainer", "tuitrain.engine", supervisor)
    if trainer is not None:
        pgid = info.get("pgid")
        stat = procid.running(trainer)
        if stat is None or pgid != trainer.pid or stat.pgid != trainer.pid:
            trainer, why_t = None, f"the trainer (pid {trainer.pid}) no longer leads process group {pgid}"
    return supervisor, trainer, why_t or why_s
