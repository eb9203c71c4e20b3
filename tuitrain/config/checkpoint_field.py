"""`core.resume_from_checkpoint`'s folder check, shared by `tuitrain run` (before the run
directory exists) and the engine (before it loads anything): one line naming the field and path."""

from __future__ import annotations

from pathlib import Path

from tuitrain.errors import TuitrainError

FIELD = "core.resume_from_checkpoint"


def checkpoint_folder(value: str) -> Path:
    """The absolute path of the complete checkpoint folder `value` names; refuses anything else."""
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise TuitrainError(f"{FIELD}: {path}: no such checkpoint folder")
    if not path.is_dir():
        raise TuitrainError(f"{FIELD}: {path}: not a checkpoint-N folder")
    if not (path / "trainer_state.json").is_file():
        raise TuitrainError(f"{FIELD}: {path}: not a complete checkpoint (no trainer_state.json)")
    return path
