"""Pickle-free state: tensors in safetensors (with a CRC), everything else in JSON.

Helpers for `checkpoint.py`: write a tensor dict durably, read one back with its size and
checksum verified, flatten an optimizer's `state_dict()` into tensors + JSON and back, and
deduplicate tied model weights (safetensors refuses tensors that share storage).
"""

from __future__ import annotations

import json
import math
import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import torch
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


def _sorted_metadata_header(data: bytes) -> bytes | None:
    """The file's header with its metadata keys sorted (safetensors writes them in hash order,
    which differs from run to run), padded to the same length; None when there is nothing to sort."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(bytes(data[8:8 + size]))
    meta = header.pop("__metadata__", None)
    if not meta or len(meta) < 2:
        return None
    text = json.dumps({"__metadata__": dict(sorted(meta.items())), **header}, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")
    return text.ljust(size, b" ") if len(text) <= size else None


def write_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> dict[str, int]:
    """Save `tensors` as safetensors (the same bytes for the same tensors), fsynced; returns
    `{"bytes", "crc32"}` for the manifest."""
    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=metadata)
    header = _sorted_metadata_header(data) if metadata and len(metadata) > 1 else None
    if header is None:
        write_bytes_durably(path, data)
        return {"bytes": len(data), "crc32": zlib.crc32(data)}
    parts = (data[:8], header, memoryview(data)[8 + len(header):])
    with open(path, "wb") as fh:
        for part in parts:
            fh.write(part)
        fh.flush()
        os.fsync(fh.fileno())
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    return {"bytes": len(data), "crc32": crc}


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


_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
    **{k: getattr(torch, v) for k, v in (("F8_E4M3", "float8_e4m3fn"), ("F8_E5M2", "float8_e5m2"),
                                          ("U16", "uint16"), ("U32", "uint32"), ("U64", "uint64"))
       if hasattr(torch, v)},
}


def read_tensors(path: Path, expect: dict[str, int] | None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Parse a verified safetensors file into (tensors, metadata), checking every header entry.

    The tensors are read-only views into the bytes read from disk (no second copy): copy
    them into live tensors, never write to them.
    """
    data = read_verified(path, expect)
    bad = f"{path.name} is not a valid safetensors file"
    if len(data) < 8:
        raise StateFormatError(f"{bad} (only {len(data)} bytes)")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > len(data) - 8:
        raise StateFormatError(f"{bad} (header runs past the end: truncated?)")
    try:
        header = json.loads(bytes(data[8 : 8 + header_len]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StateFormatError(f"{bad} (header: {exc})") from None
    if not isinstance(header, dict):
        raise StateFormatError(f"{bad} (header is not an object)")
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + header_len :]
    tensors: dict[str, torch.Tensor] = {}
    for name, info in header.items():
        try:
            dtype = _DTYPES[info["dtype"]]
            shape = [int(d) for d in info["shape"]]
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise StateFormatError(f"{bad} (entry {name!r} is malformed)") from None
        numel = math.prod(shape)
        if min(shape, default=0) < 0 or not 0 <= begin <= end <= len(body) or end - begin != numel * dtype.itemsize:
            raise StateFormatError(f"{bad} (tensor {name!r} does not fit the file: truncated?)")
        if numel == 0:
            tensors[name] = torch.empty(shape, dtype=dtype)
        else:
            with warnings.catch_warnings():  # read-only buffer: the views are only copied from
                warnings.simplefilter("ignore", UserWarning)
                tensors[name] = torch.frombuffer(body, dtype=dtype, count=numel, offset=begin).view(shape)
    if not isinstance(meta, dict):
        raise StateFormatError(f"{bad} (metadata is not an object)")
    return tensors, {str(k): str(v) for k, v in meta.items()}


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
