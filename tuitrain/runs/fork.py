"""Forking a run: a new run directory that starts from one of another run's checkpoints.

`fork(run, checkpoint=None, name=None, overrides=(), preset_text=None)` takes the parent's
owner lock (so nothing starts, rewinds or rotates it meanwhile; the lock file is not
rewritten), picks its checkpoint (default: the newest complete one), builds the fork's preset
from the parent's frozen `preset.toml` (or `preset_text`, an edited copy) plus `overrides`,
checks every changed setting against the resume rules (honoured or refused before anything
is created, never ignored), claims the fork's directory under its name, hard-links the
checkpoint into it (a copy across filesystems) and starts the trainer from it. The parent's
files are not written: its directory stays byte for byte as it was.

The fork's run.json `parent` and its first `start` event's `parent` name the parent run and
checkpoint (`lineage.parent_record`).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tomllib
from pathlib import Path
from typing import Any, Iterable

from tuitrain import safeio
from tuitrain.errors import TuitrainError
from tuitrain.layout import ACTIVE_STATES, PRESET_TOML, checkpoint_step, file_mode, is_complete_checkpoint, leftover_name
from tuitrain.runlock import RunLock
from tuitrain.runs.identity import require_own
from tuitrain.runs.lineage import parent_lineage, parent_record
from tuitrain.runs.registry import RunInfo, find_run, run_info
from tuitrain.runs.rundir import claim_run_dir, update_run_json

# Settings a fork does not inherit from its parent's frozen preset: where the parent ran and
# where it started from (an `--set` may give them again).
NOT_INHERITED = ("output_dir", "overwrite_output_dir", "resume_from_checkpoint")
# The most of a checkpoint's `tuitrain_state.json` read to check a fork's settings.
_STATE_BYTES = 64 * 1024 * 1024


def fork_name(parent_name: str, step: int) -> str:
    """The default name of a fork of `parent_name` at `step`: `<parent>-from-<step>` (a sweep
    member's `shoot/lr=0.1` gives `shoot-lr=0.1-from-300`: the fork is a run of its own)."""
    return f"{parent_name.replace('/', '-')}-from-{step}"


def fork(run: RunInfo | str | Path, checkpoint: str | None = None, name: str | None = None,
         overrides: Iterable[str] = (), preset_text: str | None = None, detach: bool = True,
         trust_owner: bool = False, runs_root: Path | None = None) -> RunInfo:
    """Start a new run (under the runs root) from `run`'s `checkpoint` (default: its newest
    complete one); returns the fork's `RunInfo`.

    `name` (default `<parent>-from-<step>`, made free) must be free (`names.NameTakenError`
    suggests one); `preset_text` replaces the parent's preset (the editor's edited copy);
    `overrides` are `--set` strings on top. A setting a resume cannot honour is refused here,
    before anything is created. A running parent is refused (`WrongStateError`): fork it once
    it has stopped. Another user's run only with `trust_owner` (its preset's code runs as you).
    """
    from tuitrain.runs.launch import WrongStateError, checkpoint_to_resume, engine_argv, start_run
    from tuitrain.runs.names import NameTakenError, suggest_name

    parent = run if isinstance(run, RunInfo) else find_run(run)
    pdir = parent.run_dir
    require_own(pdir, "fork", trust_owner, " (its preset's code would run as you; pass --trust-owner if you trust it)")
    if parent.state in ACTIVE_STATES:
        raise WrongStateError(f"run {parent.name} is {parent.state}; fork it once it has stopped "
                              "(`tuitrain stop` saves a checkpoint)")
    # held, not recorded: nothing of the parent is written, its lock file included
    with RunLock.acquire(pdir, "launcher", record=False):
        parent = run_info(pdir)
        if parent.state in ACTIVE_STATES:
            raise WrongStateError(f"run {parent.name} is {parent.state}; fork it once it has stopped")
        chosen = checkpoint_to_resume(pdir, parent.name, checkpoint)
        step = checkpoint_step(chosen)
        preset = fork_preset(pdir, list(overrides), preset_text)
        check_fork_settings(pdir / chosen, preset)
        engine_argv(preset, pdir)  # an unknown launcher is refused before anything is created
        wanted = name or suggest_name(fork_name(parent.name, step), runs_root)
        try:
            run_dir, lock = claim_run_dir(preset, runs_root=runs_root, name=wanted,
                                          preset_name=parent.preset_name)
        except NameTakenError as exc:
            if name:
                raise
            run_dir, lock = claim_run_dir(preset, runs_root=runs_root, name=exc.suggestion,
                                          preset_name=parent.preset_name)
        try:
            link_checkpoint(pdir / chosen, run_dir / chosen)
            record = parent_record(pdir / chosen, fork=True)
            update_run_json(run_dir, parent=record, resumed_from=chosen)
            argv = engine_argv(preset, run_dir, chosen, parent_lineage(record))
        except BaseException:
            lock.release()
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran in it
            raise
    return start_run(run_dir, argv, preset, lock, detach)


def fork_preset(parent_dir: Path, overrides: list[str], preset_text: str | None = None) -> Any:
    """The fork's preset: the parent's frozen preset (or `preset_text`) without the settings
    of `NOT_INHERITED`, plus `overrides`; `PresetErrors` when it does not validate."""
    from tuitrain.config import load_preset_data, load_preset_text
    from tuitrain.config.limits import MAX_PRESET_BYTES

    label = str(parent_dir / PRESET_TOML) if preset_text is None else f"<edited preset of {parent_dir.name}>"
    if preset_text is None:
        try:
            preset_text = safeio.read_text(parent_dir / PRESET_TOML, MAX_PRESET_BYTES, PRESET_TOML)
        except OSError as exc:
            raise TuitrainError(f"{label}: cannot read the run's preset ({exc.strerror or exc})") from None
    load_preset_text(preset_text, label)  # bounds, syntax and values, each problem at its line
    data = tomllib.loads(preset_text)
    core = data.get("core")
    if isinstance(core, dict):
        data["core"] = {k: v for k, v in core.items() if k not in NOT_INHERITED}
    return load_preset_data(data, label, overrides, preset_text)


def check_fork_settings(checkpoint: Path, preset: Any) -> list[str]:
    """The settings the fork changes from those `checkpoint` was saved with, as honoured
    `key: old -> new` lines; `TuitrainError` naming every change a fork cannot honour (those
    of a resume, and the optimizer's hyperparameters: `resume_rules.HONOURED_ON_FORK`). A
    checkpoint whose state cannot be read here is left to the trainer's own check."""
    from tuitrain.config.integrations import redacted
    from tuitrain.config.resume_rules import check_resume_config

    try:
        state = json.loads(safeio.read_text(checkpoint / "tuitrain_state.json", _STATE_BYTES, "tuitrain_state.json"))
    except (OSError, ValueError):
        return []
    saved = state.get("config") if isinstance(state, dict) else None
    return check_resume_config(saved if isinstance(saved, dict) else None, redacted(preset.values()),
                               checkpoint.name, fork=True)


def link_checkpoint(source: Path, target: Path) -> None:
    """Put a copy of the complete checkpoint `source` at `target`: hard links (nothing is
    copied; a checkpoint's files are never written in place), real copies across
    filesystems. Built in a temporary sibling and renamed into place, as a save is."""
    tmp = target.parent / leftover_name(checkpoint_step(target.name), "tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=file_mode(0o777))
    try:
        _link_tree(source, tmp)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not is_complete_checkpoint(target):
        shutil.rmtree(target, ignore_errors=True)
        raise TuitrainError(f"{source}: the checkpoint changed while it was being forked; try again")


def _link_tree(source: Path, target: Path) -> None:
    for entry in os.scandir(source):
        dest = target / entry.name
        if entry.is_dir(follow_symlinks=False):
            dest.mkdir(mode=file_mode(0o777))
            _link_tree(Path(entry.path), dest)
        elif entry.is_file(follow_symlinks=False):
            try:
                os.link(entry.path, dest)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                shutil.copy2(entry.path, dest)
