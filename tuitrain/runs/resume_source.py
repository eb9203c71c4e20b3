"""Where a new run with `core.resume_from_checkpoint` starts: resolved before its directory exists.

HF's `resume_from_checkpoint=True` means the newest checkpoint in `output_dir`. Here every
run gets a directory of its own, so `true` / `"last"` means the newest complete checkpoint
of the latest earlier run of the same preset (its `run.json` `preset_name`) among the runs
tuitrain knows (`tuitrain ls`). The resolved absolute path is frozen into the new run's
`preset.toml`, and a missing or incomplete folder is refused before anything is created.
With `auto_find_batch_size`, the new run takes the batch size the checkpoint trained with, as
HF does (it may have been shrunk after running out of memory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tuitrain.config.checkpoint_field import FIELD, checkpoint_folder
from tuitrain.errors import TuitrainError
from tuitrain.layout import latest_complete_checkpoint


def last_checkpoint_of(preset_name: str) -> Path:
    """The newest complete checkpoint of the latest run of `preset_name` that has one."""
    from tuitrain.runs.registry import candidate_dirs
    from tuitrain.runs.rundir import RunDirError, read_run_json

    runs = []
    for run_dir in candidate_dirs():
        try:
            data = read_run_json(run_dir)
        except RunDirError:
            continue
        if data.get("preset_name") == preset_name:
            runs.append((float(data.get("started") or data.get("created") or 0.0), str(run_dir), run_dir))
    for _, _, run_dir in sorted(runs, reverse=True):  # newest first
        found = latest_complete_checkpoint(run_dir)
        if found is not None:
            return found
    raise TuitrainError(f'{FIELD}: "last": no earlier run of preset {preset_name!r} has a complete '
                        "checkpoint (give the path of a checkpoint-N folder)")


def resolve_resume_source(preset: Any, allow_foreign: bool = False) -> None:
    """Replace `preset.args.resume_from_checkpoint` by the absolute path of a complete checkpoint
    (or, with `allow_foreign`, of a foreign checkpoint whose weights alone the run takes).

    Raises `TuitrainError` naming the field and the path when there is none.
    """
    value = preset.args.resume_from_checkpoint
    if not value:
        return
    if value == "last":
        path = last_checkpoint_of(Path(str(preset.path)).stem or "preset")
    else:
        path = checkpoint_folder(value, allow_foreign)
    preset.args = preset.args.replace(resume_from_checkpoint=str(path.resolve()))
    if preset.args.auto_find_batch_size:
        _adopt_batch_size(preset, path)


def _adopt_batch_size(preset: Any, path: Path) -> None:
    """As HF does with auto_find_batch_size: continue with the batch size the checkpoint
    trained with (a run that shrank its batch records the one that fitted)."""
    try:
        # HF's TrainerState field, as transformers reads it back with auto_find_batch_size
        batch = json.loads((path / "trainer_state.json").read_text(encoding="utf-8")).get("train_batch_size")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return  # the engine refuses an unreadable checkpoint, with the reason
    if type(batch) is int and batch >= 1:
        preset.args = preset.args.replace(per_device_train_batch_size=batch)
