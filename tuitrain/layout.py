"""The run directory's layout: every name in it, what a complete checkpoint is, the run states.

One definition for the engine (which writes the directory), the runs package (which
launches, resumes and lists runs) and the UI (which shows them). Stdlib only, so every
package may import it, the engine on a bare GPU image included.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Iterable

# -- files of a run directory ------------------------------------------------------------------

RUN_JSON = "run.json"
PRESET_TOML = "preset.toml"
METRICS = "metrics.jsonl"
STDOUT_LOG = "stdout.log"
# Held (fcntl.flock, exclusive) for a moment while run.json is rewritten.
RUN_JSON_LOCK = ".run.lock"
# Held (fcntl.flock, exclusive) by whoever owns the run: a launcher from its check to its
# spawn, then the supervisor and the trainer for their whole lives. One trainer per run.
OWNER_LOCK = ".owner.lock"
# Files a run creates that do not make a directory "used" (a new run may still start in it).
BOOKKEEPING = frozenset({RUN_JSON_LOCK, OWNER_LOCK})

# -- checkpoints ----------------------------------------------------------------------------------

CHECKPOINT_PREFIX = "checkpoint-"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
# What a checkpoint folder must hold to be complete. `tuitrain_state.json` (the engine's own
# state, with the manifest of the other files) is written last, after every other file is
# fsynced; `trainer_state.json` is transformers' TrainerState. A folder that lacks any of
# these is never listed, loaded or resumed from. Extend this tuple when a checkpoint gains a
# required file.
CHECKPOINT_FILES = ("model.safetensors", "trainer_state.json", "tuitrain_state.json")
# A save in progress (`.checkpoint-N.tmp-<pid>`), a re-saved step's old copy while it is
# swapped out (`.checkpoint-N.old-<pid>`), and a rotated checkpoint being deleted
# (`.checkpoint-N.trash-<pid>`). Only the first two may hold the one complete copy of a step.
LEFTOVER_RE = re.compile(r"^\.(checkpoint-\d+)\.(tmp|old|trash)-(\d+)$")


def checkpoint_name(step: int) -> str:
    """`checkpoint-{step}`."""
    return f"{CHECKPOINT_PREFIX}{int(step)}"


def checkpoint_step(name: str | os.PathLike) -> int | None:
    """N of a `checkpoint-N` name (or path), or None for any other name."""
    match = CHECKPOINT_RE.match(Path(name).name)
    return int(match[1]) if match else None


def leftover_name(step: int, kind: str, pid: int | None = None) -> str:
    """`.checkpoint-N.<kind>-<pid>` (kind: tmp, old or trash)."""
    return f".{checkpoint_name(step)}.{kind}-{os.getpid() if pid is None else pid}"


def is_complete_checkpoint(path: str | os.PathLike) -> bool:
    """Whether `path` is a real `checkpoint-N` folder holding every file of CHECKPOINT_FILES."""
    path = Path(path)
    if checkpoint_step(path) is None or path.is_symlink() or not path.is_dir():
        return False
    for name in CHECKPOINT_FILES:
        try:
            st = os.lstat(path / name)
        except OSError:
            return False
        if not (st.st_mode & 0o170000 == 0o100000 and st.st_size > 0):  # a non-empty regular file
            return False
    return True


def complete_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """The complete `checkpoint-N/` folders of a run directory, oldest step first."""
    run_dir = Path(run_dir)
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return []
    found = []
    for entry in entries:
        step = checkpoint_step(entry.name)
        if step is not None and is_complete_checkpoint(entry.path):
            found.append((step, Path(entry.path)))
    return [path for _, path in sorted(found)]


def latest_complete_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run directory, or None (HF's `get_last_checkpoint`)."""
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


# -- lineage --------------------------------------------------------------------------------------

# A rewind sets the checkpoints past the step it goes back to aside in `rewound/<time>/`: kept,
# never listed as the run's checkpoints, never rotated, never chosen as the latest.
REWOUND_DIR = "rewound"


def rewound_folder_name(when: float, taken: Iterable[str] = ()) -> str:
    """`<time>` (`20261201-101010`, local time) for a rewind's folder, `-2`, `-3` … when taken."""
    base = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
    taken = set(taken)
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


def entry_step(name: str) -> int | None:
    """The step of a checkpoint folder (`checkpoint-N`) or of a save's leftover
    (`.checkpoint-N.tmp-<pid>` …), else None."""
    step = checkpoint_step(name)
    if step is not None:
        return step
    match = LEFTOVER_RE.match(name)
    return checkpoint_step(match[1]) if match else None


def entries_past(run_dir: str | os.PathLike, step: int) -> list[Path]:
    """Every checkpoint folder (complete or not) and save leftover of a step past `step`,
    oldest step first: what a rewind to `step` sets aside. A leftover must go with them: the
    next trainer would otherwise put a set-aside step back in place."""
    try:
        entries = list(os.scandir(run_dir))
    except OSError:
        return []
    found = []
    for entry in entries:
        n = entry_step(entry.name)
        if n is not None and n > step:
            found.append((n, entry.name, Path(entry.path)))
    return [path for _, _, path in sorted(found)]


# -- states ---------------------------------------------------------------------------------------

# `diverged`: the trainer saw a NaN/inf loss at a logging step, saved a checkpoint and stopped.
STATES = ("queued", "running", "stopping", "stopped", "finished", "failed", "diverged")
# A trainer may be alive (or about to be): stop and kill apply, resume and delete do not.
ACTIVE_STATES = ("queued", "running", "stopping")
ENDED_STATES = ("stopped", "finished", "failed", "diverged")
# Shown for a directory whose files cannot be read safely (a FIFO, a device, garbage).
UNREADABLE = "unreadable"

# -- the trainer's exit codes (read by the supervisor) --------------------------------------------

EXIT_OK = 0  # finished or stopped; the final `status` event says which
EXIT_FAILED = 1
# The run finished / stopped but its final `status` event could not be written (disk full):
# the exit code carries the outcome to the supervisor instead.
EXIT_FINISHED_UNRECORDED = 3
EXIT_STOPPED_UNRECORDED = 4
EXIT_DIVERGED_UNRECORDED = 5
EXIT_UNRECORDED = {EXIT_FINISHED_UNRECORDED: "finished", EXIT_STOPPED_UNRECORDED: "stopped",
                   EXIT_DIVERGED_UNRECORDED: "diverged"}

# -- limits ---------------------------------------------------------------------------------------

# The longest event line a writer emits; readers drop longer lines as corrupt.
MAX_EVENT_BYTES = 1024 * 1024

# -- modes ----------------------------------------------------------------------------------------

# Whatever the umask says, nothing a run writes is world-writable; group bits follow the umask.
NEVER_WORLD_WRITABLE = 0o002
# A file that holds a secret (a preset with [launch.env] values or a token) is the owner's only.
SECRET_FILE_MODE = 0o600


def restrict_umask() -> int:
    """Add `o-w` to this process's umask (inherited by every child); returns the new umask."""
    current = os.umask(0)
    new = current | NEVER_WORLD_WRITABLE
    os.umask(new)
    return new


def file_mode(base: int = 0o666) -> int:
    """`base` as the umask would make it, less world-write."""
    current = os.umask(0)
    os.umask(current)
    return base & ~current & ~NEVER_WORLD_WRITABLE
