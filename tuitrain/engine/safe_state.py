"""Pickle-free state: tensors in safetensors (with a CRC), everything else in JSON.

Helpers for `checkpoint.py`: write a tensor dict durably, read one back with its size and
checksum verified, flatten an optimizer's `state_dict()` into tensors + JSON and back, and
deduplicate tied model weights (safetensors refuses tensors that share storage).
"""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

ALIASES_KEY = "tuitrain.aliases"


class StateFormatError(ValueError):
    """A state file is unreadable or inconsistent (the loader turns it into a user error)."""


def fsync_dir(path: Path) -> None:
    """Make a rename or creation inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_durably(path: Path, data: bytes) -> None:
    """Write, flush and fsync one file."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_json_durably(path: Path, obj: Any) -> dict[str, int]:
    """Dump JSON (strict: no NaN outside floats' JSON extensions) and fsync; returns its size/CRC."""
    data = json.dumps(obj, indent=1, sort_keys=False).encode("utf-8")
    write_bytes_durably(path, data)
    return {"bytes": len(data), "crc32": zlib.crc32(data)}


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> dict[str, int]:
    """Save `tensors` as safetensors, fsynced; returns `{"bytes", "crc32"}` for the manifest."""
    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    write_bytes_durably(path, data)
    return {"bytes": len(data), "crc32": zlib.crc32(data)}


def read_verified(path: Path, expect: dict[str, int] | None) -> bytes:
    """Read a file whole and check it against its manifest entry (size, CRC32)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise StateFormatError(f"{path.name} is missing") from None
    if expect is not None:
        if len(data) != expect.get("bytes"):
            raise StateFormatError(f"{path.name} is truncated or altered ({len(data)} bytes, expected {expect.get('bytes')})")
        if zlib.crc32(data) != expect.get("crc32"):
            raise StateFormatError(f"{path.name} fails its checksum (tampered or corrupt)")
    return data


def read_tensors(path: Path, expect: dict[str, int] | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse a verified safetensors file into (tensors, metadata)."""
    data = read_verified(path, expect)
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
    except Exception as exc:  # safetensors raises its own error types for bad headers
        raise StateFormatError(f"{path.name} is not a valid safetensors file ({exc})") from None
    return tensors, dict(header.get("__metadata__") or {})


def read_json(path: Path, expect: dict[str, int] | None = None) -> Any:
    """Parse a verified JSON file."""
    data = read_verified(path, expect)
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFormatError(f"{path.name} is not valid JSON ({exc})") from None


# -- tied weights -------------------------------------------------------------------------

def _storage_key(t: torch.Tensor) -> tuple:
    return (t.device.type, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()), t.dtype)


def dedupe_shared(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Keep one name per shared tensor; returns (unique tensors, {alias: kept name})."""
    seen: dict[tuple, str] = {}
    unique: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    for name, t in state.items():
        if t.numel() == 0:
            unique[name] = t
            continue
        key = _storage_key(t)
        if key in seen:
            aliases[name] = seen[key]
        else:
            seen[key] = name
            unique[name] = t
    # Partial overlaps (views into one buffer) are still refused by safetensors: clone them.
    ptrs: dict[int, str] = {}
    for name, t in list(unique.items()):
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in ptrs:
            unique[name] = t.clone()
        elif ptr is not None:
            ptrs[ptr] = name
    return unique, aliases


# -- optimizer state ----------------------------------------------------------------------

def _json_safe(value: Any, where: str) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v, where) for k, v in value.items()}
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    raise StateFormatError(f"{where}: value of type {type(value).__name__} cannot be stored as JSON")


def json_safe(value: Any, where: str) -> Any:
    """`value` with non-finite floats tagged so strict JSON readers accept it."""
    return _json_safe(value, where)


def from_json_safe(value: Any) -> Any:
    """Undo `json_safe`."""
    if isinstance(value, dict):
        if set(value) == {"__float__"}:
            return float(value["__float__"])
        return {k: from_json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json_safe(v) for v in value]
    return value


def flatten_optimizer(sd: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into `state.{index}.{name}` tensors and a JSON part."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for index, pstate in sd["state"].items():
        for name, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = _json_safe(value, f"optimizer state {index}.{name}")
    groups = [_json_safe(g, "optimizer param_groups") for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """Rebuild a state_dict; `template` (the live optimizer's) fixes tuple-typed group fields."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        parts = key.split(".", 2)
        if len(parts) != 3 or parts[0] != "state" or not parts[1].isdigit():
            raise StateFormatError(f"optimizer.safetensors has an unexpected tensor {key!r}")
        state.setdefault(int(parts[1]), {})[parts[2]] = value
    for index, values in (meta.get("scalars") or {}).items():
        if not str(index).isdigit():
            raise StateFormatError(f"optimizer.json has a bad state index {index!r}")
        state.setdefault(int(index), {}).update(from_json_safe(values))
    groups = from_json_safe(meta["param_groups"])
    if not isinstance(groups, list) or len(groups) != len(template["param_groups"]):
        raise StateFormatError(
            f"optimizer has {len(template['param_groups'])} parameter groups, the checkpoint "
            f"{len(groups) if isinstance(groups, list) else 'no valid'}"
        )
    for saved, live in zip(groups, template["param_groups"]):
        if not isinstance(saved, dict) or "params" not in saved:
            raise StateFormatError("optimizer.json param_groups entry lacks 'params'")
        for k, v in live.items():
            if isinstance(v, tuple) and isinstance(saved.get(k), list):
                saved[k] = tuple(saved[k])
    return {"state": state, "param_groups": groups}
