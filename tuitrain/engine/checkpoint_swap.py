"""Putting a finished checkpoint folder in place, and tidying what killed saves left.

A new step's folder is renamed into place. A step that exists already (the last step of a
resumed run, saved again) is swapped with its new folder in one atomic
`renameat2(RENAME_EXCHANGE)`; where the C library or the filesystem cannot, the old folder is
renamed aside first, and a kill between the two renames leaves the step only as leftovers,
which `clean_stale_tmp` (run by the next trainer before anything else) puts back.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
from pathlib import Path
from typing import Any

from tuitrain import layout
from tuitrain.engine.safe_state import fsync_dir

TMP_RE = layout.LEFTOVER_RE
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_renameat2: Any = None


def put_in_place(tmp: Path, final: Path, step: int) -> None:
    """Rename the finished `tmp` to `final`; a `final` that exists is swapped out atomically."""
    if not os.path.lexists(final):
        os.rename(tmp, final)
        fsync_dir(final.parent)
        return
    if exchange(tmp, final):  # `tmp` now holds the old copy
        fsync_dir(final.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = final.parent / layout.leftover_name(step, "old")
    os.rename(final, old)  # a kill here leaves both copies aside: `recover_leftovers` puts one back
    os.rename(tmp, final)
    fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def exchange(a: str | Path, b: str | Path) -> bool:
    """Swap two existing paths in one step (Linux `renameat2(RENAME_EXCHANGE)`).

    False where the C library or the filesystem cannot; `OSError` for any other failure.
    """
    global _renameat2
    if _renameat2 is None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fn = libc.renameat2
            fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            fn.restype = ctypes.c_int
            _renameat2 = fn
        except (OSError, AttributeError):
            _renameat2 = False
    if _renameat2 is False:
        return False
    if _renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _holds_checkpoint(folder: Path, name: str) -> bool:
    """Whether a leftover folder holds every file of a complete checkpoint (of the final
    model, `name` = `final`: its weights)."""
    needed = ("model.safetensors",) if name == layout.FINAL_DIR else layout.CHECKPOINT_FILES
    return all((folder / f).is_file() and (folder / f).stat().st_size > 0 for f in needed)


def clean_stale_tmp(output_dir: str | Path) -> list[Path]:
    """Tidy what killed saves left: put back a step whose only complete copy was set aside
    (a kill between the two renames of a re-save), and remove every other
    `.checkpoint-N.{tmp,old,trash}-<pid>` (and `.final.{tmp,old}-<pid>`) of a process that is
    gone. Returns what was removed.

    The caller owns the run directory (its owner lock), so no other save is in progress.
    """
    output_dir = Path(output_dir)
    removed: list[Path] = []
    if not output_dir.is_dir():
        return removed
    by_step: dict[str, list[tuple[str, Path]]] = {}
    for entry in output_dir.iterdir():
        m = TMP_RE.match(entry.name) or layout.FINAL_LEFTOVER_RE.match(entry.name)
        if not m or int(m.group(3)) == os.getpid():
            continue
        by_step.setdefault(m.group(1), []).append((m.group(2), entry))
    for name, leftovers in by_step.items():
        final = output_dir / name
        if not os.path.lexists(final):
            # a finished save (tmp) is newer than the copy it was replacing (old)
            for kind in ("tmp", "old"):
                found = next((p for k, p in leftovers if k == kind and _holds_checkpoint(p, name)), None)
                if found is not None:
                    os.rename(found, final)
                    fsync_dir(output_dir)
                    leftovers = [(k, p) for k, p in leftovers if p != found]
                    break
        for _, path in leftovers:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
