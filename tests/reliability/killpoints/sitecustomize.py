"""Deterministic kill points for `test_kill_points.py`, loaded by every Python process that has
this folder first on PYTHONPATH (the CLI, the supervisor and the trainer it starts).

`TUITRAIN_TEST_KILL_AT=WHERE@N` makes the process SIGKILL itself at one point of the engine's
checkpoint code, as a power cut or the OOM killer would:

- `write:FILE@N`: as it opens FILE for writing in the save of checkpoint-N (the files before it
  are written and fsynced, FILE and those after it are not);
- `rename-before@N` / `rename-after@N`: just before / just after the rename that puts
  checkpoint-N in place (after it: the checkpoint exists, its `checkpoint` event never came);
- `trash@N`: rotation has renamed checkpoint-N aside to be deleted, nothing deleted yet;
- `trash-mid@N`: rotation is deleting that folder and has removed one of its files.

Only paths of checkpoint-N's save or rotation match, so no other process is affected.
"""

from __future__ import annotations

import os
import re

_SPEC = os.environ.get("TUITRAIN_TEST_KILL_AT", "")


def _die() -> None:
    os.kill(os.getpid(), 9)


def _install(where: str, step: str) -> None:
    import builtins
    import shutil

    tmp = re.compile(rf"^\.checkpoint-{step}\.tmp-\d+$")
    trash = re.compile(rf"^\.checkpoint-{step}\.trash-\d+$")
    kind, _, target = where.partition(":")
    real_open, real_rename, real_rmtree = builtins.open, os.rename, shutil.rmtree

    def opening(file, mode="r", *args, **kwargs):
        path = os.fspath(file) if isinstance(file, (str, bytes, os.PathLike)) else ""
        if kind == "write" and "w" in str(mode) and isinstance(path, str) and os.path.basename(path) == target \
                and tmp.match(os.path.basename(os.path.dirname(path))):
            _die()
        return real_open(file, mode, *args, **kwargs)

    def renaming(src, dst, *args, **kwargs):
        into_place = tmp.match(os.path.basename(os.fspath(src))) and os.path.basename(os.fspath(dst)) == f"checkpoint-{step}"
        if kind == "rename-before" and into_place:
            _die()
        result = real_rename(src, dst, *args, **kwargs)
        if (kind == "rename-after" and into_place) or (kind == "trash" and trash.match(os.path.basename(os.fspath(dst)))):
            _die()
        return result

    def removing(path, *args, **kwargs):
        if kind == "trash-mid" and trash.match(os.path.basename(os.fspath(path))):
            first = sorted(os.listdir(path))[0]
            os.unlink(os.path.join(path, first))
            _die()
        return real_rmtree(path, *args, **kwargs)

    builtins.open = opening
    os.rename = renaming
    shutil.rmtree = removing


if "@" in _SPEC:
    _where, _, _step = _SPEC.rpartition("@")
    _install(_where, _step)
