"""Presets: the schema of every field, loading and validating TOML, and editing it.

Stdlib only at import time (tomlkit is imported inside the functions that edit TOML).
"""

from __future__ import annotations

from tuitrain.config import schema
from tuitrain.config.schema import FIELDS, GROUPS, Field, Group

__all__ = ["schema", "FIELDS", "GROUPS", "Field", "Group"]
