"""Run names: what makes one valid, which are taken, and finding a run by its name or a prefix.

A run's name is `run.json`'s `name`: the one given (`tuitrain run --name`, `fork --name`, the
New-run dialog) or `<preset>-<timestamp>`. A run started under the runs root without an
`--output-dir` lives in `<root>/<name>`. A name given is unique among the runs tuitrain
knows (those `tuitrain ls --all` lists): a taken one is refused with a free one suggested
(`cosine` → `cosine-2`). Wherever a RUN is asked for, a run directory, a run's name or a
unique prefix of one is accepted; an unknown word gets the closest name ("did you mean").

`names_lock()` serialises "is it free" and "create it" between launchers (a sweep queue
launching many runs, two shells) so that two launches never claim one name.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from tuitrain.errors import TuitrainError
from tuitrain.layout import RUN_JSON
from tuitrain.textfmt import closest, escape_controls

MAX_NAME = 100
# Letters and digits first, then those and `. _ - + @ = ,`: a name is a directory name under
# the runs root and a word in a shell, never a path or an option.
NAME_RE = re.compile(r"^\w[\w.+@=,-]*$")
ALLOWED = "letters, digits and . _ - + @ = , (no spaces or slashes, not starting with . or -)"


class BadNameError(TuitrainError):
    """A run name that cannot be used."""


class NameTakenError(TuitrainError):
    """A run name another run has; `suggestion` is a free one."""

    def __init__(self, message: str, suggestion: str) -> None:
        super().__init__(message)
        self.suggestion = suggestion


class UnknownRunError(TuitrainError):
    """RUN names no run directory and no known run."""


def check_name(name: str) -> str:
    """`name` when it can name a run, else `BadNameError` saying what a name may hold."""
    if not isinstance(name, str) or not name:
        raise BadNameError("run name: empty (give a name, or leave it out for <preset>-<timestamp>)")
    if len(name) > MAX_NAME:
        raise BadNameError(f"run name: {len(name)} characters, at most {MAX_NAME}")
    if not NAME_RE.match(name):
        raise BadNameError(f"run name {escape_controls(name)!r}: use {ALLOWED}")
    return name


def free_name(base: str, taken: Iterable[str]) -> str:
    """`base` when free, else `base-2`, `base-3` … (`cosine-2` of a series `cosine`, `cosine-2`
    counts on: `cosine-3`)."""
    taken = set(taken)
    if base not in taken:
        return base
    match = re.match(r"^(.*)-(\d+)$", base)
    stem, n = (match[1], int(match[2])) if match and match[1] in taken else (base, 1)
    while True:
        n += 1
        name = f"{stem}-{n}"
        if name not in taken:
            return name


def run_names(root: Path | None = None) -> dict[str, list[Path]]:
    """Every known run's name (and directory name, when it differs) → its run directories."""
    from tuitrain.runs.registry import candidate_dirs
    from tuitrain.runs.rundir import RunDirError, read_run_json

    found: dict[str, list[Path]] = {}
    for run_dir in candidate_dirs(root):
        names = {run_dir.name}
        try:
            data = read_run_json(run_dir)
        except RunDirError:
            data = {}
        name = data.get("name")
        if isinstance(name, str) and name:
            if data.get("sweep"):
                names = set()  # a sweep's member goes by `<sweep>/<member>` alone
            names.add(name)
        for one in names:
            found.setdefault(one, []).append(run_dir)
    return found


def require_free(name: str, root: Path | None = None, taken: dict[str, list[Path]] | None = None) -> str:
    """`name` when it is valid and no known run has it; else `BadNameError` / `NameTakenError`
    (which suggests a free name)."""
    check_name(name)
    taken = run_names(root) if taken is None else taken
    if name in taken:
        suggestion = free_name(name, taken)
        where = escape_controls(str(taken[name][0]))
        raise NameTakenError(f"run name {name!r} is taken (by {where}); try {suggestion!r}", suggestion)
    return name


def suggest_name(base: str, root: Path | None = None) -> str:
    """A free name close to `base` (the default a dialog offers)."""
    return free_name(base, run_names(root))


@contextlib.contextmanager
def names_lock() -> Iterator[None]:
    """Hold tuitrain's lock of run names (`$XDG_STATE_HOME/tuitrain/names.lock`) while a
    launcher checks that a name is free and claims it."""
    from tuitrain.runs.registry import state_dir

    folder = state_dir()
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    for part in reversed(missing):  # each private (XDG), as the registry's
        part.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(folder / "names.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def resolve_run(query: str | os.PathLike, root: Path | None = None) -> Path:
    """The run directory `query` names: a run directory, a run's name, or a unique prefix of
    a name. `UnknownRunError` for an ambiguous or unknown one (with the closest names)."""
    from tuitrain.runs.registry import runs_root

    path = Path(query).expanduser()
    if os.path.lexists(path / RUN_JSON):
        return path
    word = str(query)
    root = Path(root) if root is not None else runs_root()
    if os.path.lexists(root / word / RUN_JSON) and (root / word).resolve().is_relative_to(root.resolve()):
        return root / word  # a run, or a sweep's member (`shoot/lr_scheduler_type=cosine`)
    names = run_names(root)
    exact = names.get(word, [])
    if len(set(exact)) == 1:
        return exact[0]
    if exact:
        raise UnknownRunError(f"run {word!r} is ambiguous: " + ", ".join(str(d) for d in sorted(set(exact)))
                              + " (give its directory)")
    prefixed = sorted({d for name, dirs in names.items() if name.startswith(word) for d in dirs})
    if len(prefixed) == 1 and word:
        return prefixed[0]
    shown = escape_controls(word)
    if prefixed:
        which = sorted({n for n, dirs in names.items() if n.startswith(word)})
        listed = ", ".join(which[:6]) + (f" (+{len(which) - 6} more)" if len(which) > 6 else "")
        raise UnknownRunError(f"run {shown!r} is ambiguous: it starts {len(prefixed)} runs' names ({listed}); "
                              "type more of the name")
    near = closest(word, list(names))
    hint = f"did you mean {near!r}? " if near else ""
    raise UnknownRunError(f"unknown run {shown!r} ({hint}see `tuitrain ls`, or give its directory)")
