"""`core.resume_from_checkpoint`'s folder check, shared by `tuitrain run` (before the run
directory exists) and the engine (before it loads anything): one line naming the field and path.

A foreign checkpoint (one tuitrain did not write: a transformers `checkpoint-N/`, or a weights
file) is accepted only when the run was started with `--allow-foreign-checkpoint`; the new run
then takes its weights alone (a pickle only through `torch.load(weights_only=True)`).
"""

from __future__ import annotations

from pathlib import Path

from tuitrain.errors import TuitrainError
from tuitrain.layout import CHECKPOINT_FILES, is_complete_checkpoint

FIELD = "core.resume_from_checkpoint"
FLAG = "--allow-foreign-checkpoint"
# What a foreign checkpoint's weights may be, in the order they are looked for in a folder.
FOREIGN_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def foreign_weights(path: Path) -> Path | None:
    """The weights file of a foreign checkpoint at `path` (a file, or a folder holding one)."""
    candidates = [path] if path.is_file() and path.suffix in WEIGHT_SUFFIXES else [path / n for n in FOREIGN_WEIGHTS]
    return next((c for c in candidates if c.is_file() and c.stat().st_size > 0), None)


def _incomplete(path: Path) -> str:
    missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
    empty = [name for name in CHECKPOINT_FILES if (path / name).is_file() and (path / name).stat().st_size == 0]
    parts = ([f"no {', '.join(missing)}"] if missing else []) + ([f"empty {', '.join(empty)}"] if empty else [])
    return "; ".join(parts) or "not a checkpoint-N folder"


def checkpoint_folder(value: str, allow_foreign: bool = False) -> Path:
    """The absolute path of the complete checkpoint `value` names (or, with `allow_foreign`, of a
    foreign checkpoint's folder or weights file); refuses anything else in one line."""
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise TuitrainError(f"{FIELD}: {path}: no such checkpoint folder")
    if is_complete_checkpoint(path):
        return path
    weights = foreign_weights(path)
    if allow_foreign and weights is not None:
        return path
    if weights is not None:  # another trainer's checkpoint, or weights alone
        what = _incomplete(path) if path.is_dir() else "a weights file"
        raise TuitrainError(f"{FIELD}: {path}: not a tuitrain checkpoint ({what}); to start from its weights "
                            f"alone, pass {FLAG} (a pickle is read only with torch.load(weights_only=True))")
    if not path.is_dir():
        raise TuitrainError(f"{FIELD}: {path}: not a checkpoint-N folder")
    raise TuitrainError(f"{FIELD}: {path}: not a complete checkpoint ({_incomplete(path)})")
