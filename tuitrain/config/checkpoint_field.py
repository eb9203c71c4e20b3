"""`core.resume_from_checkpoint`'s folder check, shared by `tuitrain run` (before the run
directory exists) and the engine (before it loads anything): one line naming the field and path."""

from __future__ import annotations

from pathlib import Path

from tuitrain.errors import TuitrainError
from tuitrain.layout import CHECKPOINT_FILES, is_complete_checkpoint

FIELD = "core.resume_from_checkpoint"


def checkpoint_folder(value: str) -> Path:
    """The absolute path of the complete checkpoint folder `value` names; refuses anything else."""
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise TuitrainError(f"{FIELD}: {path}: no such checkpoint folder")
    if not path.is_dir():
        raise TuitrainError(f"{FIELD}: {path}: not a checkpoint-N folder")
    if not is_complete_checkpoint(path):
        missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
        why = f"no {', '.join(missing)}" if missing else "not a checkpoint-N folder"
        if missing == ["tuitrain_state.json"]:
            why += ": written by another trainer (transformers?) or by a save that did not finish"
        raise TuitrainError(f"{FIELD}: {path}: not a complete checkpoint ({why})")
    return path
