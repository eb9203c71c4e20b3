"""Presets: the schema of every field, loading and validating TOML, and editing it.

Stdlib only at import time (tomlkit is imported inside the functions that edit TOML).
"""

from __future__ import annotations

from tuitrain.config import schema, tasks
from tuitrain.config.document import PresetDocument
from tuitrain.config.args import TrainingArgs
from tuitrain.config.preset import Preset, TaskSpec, load_preset, load_preset_data, load_preset_text
from tuitrain.config.problems import Problem, PresetErrors
from tuitrain.config.schema import FIELDS, GROUPS, Field, Group
from tuitrain.config.writer import new_preset_text

__all__ = [
    "schema", "tasks", "FIELDS", "GROUPS", "Field", "Group", "Preset", "TaskSpec", "Problem",
    "PresetErrors", "PresetDocument", "TrainingArgs", "load_preset", "load_preset_data", "load_preset_text",
    "new_preset_text",
]
