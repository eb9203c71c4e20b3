"""Checkpoints in `checkpoint-N/`: atomic, pickle-free, strictly validated on load.

Layout: `model.safetensors` (tied weights stored once, aliases in its metadata; transformers'
`from_pretrained` reads it), for a transformers model the other files its `save_pretrained`
writes (`config.json`, `generation_config.json`) and the tokenizer's (`pretrained.py`),
`optimizer.safetensors` (`state.{param_index}.{name}`), `optimizer.json` (param_groups and
non-tensor state), `trainer_state.json` (transformers' `TrainerState`, exactly its fields, so
`TrainerState.load_from_json` reads it), and `tuitrain_state.json` (the engine's own state:
the trainer's dict plus `scheduler_state`, `scaler_state`, `rng_state` and a
`checkpoint_files` manifest of the other files' sizes and CRC32s; written last).
The model alone (no training state) goes to `RUN_DIR/final/` at the end of training
(`save_final_model`), with a model card (`README.md`).

A save writes into `.checkpoint-N.tmp-<pid>/`, fsyncs every file and the directory, then
renames it into place: a `checkpoint-N/` that exists is complete. Saving a step that exists
already (the last step of a resumed run) swaps the two folders in one atomic
`renameat2(RENAME_EXCHANGE)`; where the filesystem cannot, the old folder is renamed aside
first and the next start puts a complete copy back if a kill fell between the two renames.
What "complete" means is `tuitrain.layout.CHECKPOINT_FILES`. A load parses and checks
everything before it copies anything into the model or optimizer.
"""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path
from typing import Any

import torch

from tuitrain import layout
from tuitrain.engine import fsdp
from tuitrain.engine.checkpoint_swap import clean_stale_tmp, exchange, put_in_place  # noqa: F401 - API
from tuitrain.engine import rng as rng_mod
from tuitrain.engine.safe_state import (
    ALIASES_KEY,
    StateFormatError,
    dedupe_shared,
    flatten_optimizer,
    from_json_safe,
    fsync_dir,
    json_safe,
    read_json,
    read_tensors,
    unflatten_optimizer,
    write_bytes_durably,
    write_json_durably,
    write_tensors,
)
from tuitrain.errors import TuitrainError

from .pretrained import write_pretrained_files

FORMAT_VERSION = 2  # 1: everything in trainer_state.json (still read)
HF_STATE_FILE = "trainer_state.json"
STATE_FILE = layout.ENGINE_STATE
CHECKPOINT_RE = layout.CHECKPOINT_RE
RESERVED_KEYS = ("scheduler_state", "scaler_state", "rng_state", "checkpoint_files", "checkpoint_format")
# What a checkpoint holds to resume training, besides the model: the rest is the model
# (loadable with from_pretrained), which is what the Hub gets at each save.
TRAINING_STATE_FILES = ("optimizer.safetensors", "optimizer.json", HF_STATE_FILE, STATE_FILE)
FINAL_DIR = layout.FINAL_DIR
MATCHING_SHAPE_STATES = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "sum", "grad_avg"}


class CheckpointSaveError(TuitrainError):
    """A checkpoint could not be written (disk full, permissions…); older ones are intact."""


class CheckpointLoadError(TuitrainError):
    """A checkpoint is incomplete, corrupt or does not fit the model; nothing was loaded."""


# -- save ---------------------------------------------------------------------------------

def save_checkpoint(
    output_dir: str | Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any = None,
    scaler: Any = None,
    trainer_state: dict[str, Any] | None = None,
    hf_state: dict[str, Any] | None = None,
    *,
    save_only_model: bool = False,
    model_state: dict[str, torch.Tensor] | None = None,
    optimizer_state: dict[str, Any] | None = None,
    processing_class: Any = None,
) -> Path:
    """Write `output_dir/checkpoint-{step}/` atomically and return its path.

    `trainer_state` (the engine's own) goes to `tuitrain_state.json`, `hf_state` (the
    fields of transformers' TrainerState) to `trainer_state.json`. `model_state` and
    `optimizer_state`, when given, are saved instead of `model.state_dict()` and
    `optimizer.state_dict()` (FSDP's full state dicts, gathered from the shards). A
    transformers model's config and `processing_class` (a tokenizer) are saved as
    `save_pretrained` saves them."""
    output_dir = Path(output_dir)
    final = output_dir / layout.checkpoint_name(step)
    tmp = output_dir / layout.leftover_name(step, "tmp")
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(mode=layout.file_mode(0o777))
        state = _state_json(trainer_state or {}, scheduler, scaler)
        files: dict[str, dict[str, int]] = {}
        files["model.safetensors"] = write_model_file(model if model_state is None else model_state,
                                                      tmp / "model.safetensors")
        for name in write_pretrained_files(model, tmp, processing_class):
            files[name] = record_file(tmp / name)
        if optimizer is not None and not save_only_model:
            tensors, meta = flatten_optimizer(optimizer.state_dict() if optimizer_state is None else optimizer_state)
            files["optimizer.safetensors"] = write_tensors(tmp / "optimizer.safetensors", tensors)
            files["optimizer.json"] = write_json_durably(tmp / "optimizer.json", meta)
        files[HF_STATE_FILE] = write_json_durably(tmp / HF_STATE_FILE, json_safe(hf_state or {}, "trainer state"))
        state["checkpoint_files"] = files
        write_json_durably(tmp / STATE_FILE, state)  # last: it holds the manifest of the others
        fsync_dir(tmp)
        put_in_place(tmp, final, step)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = exc.strerror or str(exc)
        raise CheckpointSaveError(
            f"could not save checkpoint-{step} in {output_dir}: {reason} "
            "(free disk space or raise the file-size limit; older checkpoints are intact)"
        ) from None
    except (StateFormatError, ValueError) as exc:  # ValueError: a config save_pretrained refuses
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointSaveError(f"could not save checkpoint-{step}: {exc}") from None
    return final


def write_model_file(model: torch.nn.Module | dict[str, torch.Tensor], path: Path) -> dict[str, int]:
    """The model's weights (or a state dict) as a checkpoint's `model.safetensors` (shared
    tensors stored once; `format = pt` as transformers' `save_pretrained` writes, so
    `from_pretrained` reads it)."""
    unique, aliases = dedupe_shared(dict(model if isinstance(model, dict) else _unwrap(model).state_dict()))
    return write_tensors(Path(path), unique, {ALIASES_KEY: json.dumps(aliases, sort_keys=True), "format": "pt"})


def record_file(path: Path) -> dict[str, int]:
    """fsync a file another library wrote and return its manifest entry (size, CRC32)."""
    with open(path, "rb+") as fh:
        data = fh.read()
        os.fsync(fh.fileno())
    return {"bytes": len(data), "crc32": zlib.crc32(data)}


def save_final_model(output_dir: str | Path, model: torch.nn.Module, processing_class: Any = None,
                     model_card: str | None = None, model_state: dict[str, torch.Tensor] | None = None) -> Path:
    """The trained model alone in `output_dir/final/` (replaced atomically): `model.safetensors`
    (`model_state` instead of the model's own, FSDP's full state dict), what `save_pretrained`
    writes beside it, the tokenizer, and `README.md` (`model_card`)."""
    output_dir = Path(output_dir)
    final = output_dir / FINAL_DIR
    tmp = output_dir / layout.final_leftover_name("tmp")  # what a kill leaves, the next start tidies
    old = output_dir / layout.final_leftover_name("old")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        write_model_file(model if model_state is None else model_state, tmp / "model.safetensors")
        for name in write_pretrained_files(model, tmp, processing_class):
            record_file(tmp / name)
        if model_card is not None:
            write_bytes_durably(tmp / "README.md", model_card.encode("utf-8"))
        fsync_dir(tmp)
        if final.exists():
            os.rename(final, old)
        os.rename(tmp, final)
        fsync_dir(output_dir)
        shutil.rmtree(old, ignore_errors=True)
    except (OSError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CheckpointSaveError(f"could not save the final model in {final}: {reason}") from None
    return final


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module under DDP / torch.compile wrappers, so keys do not depend on wrapping."""
    while True:
        inner = getattr(model, "module", None) or getattr(model, "_orig_mod", None)
        if not isinstance(inner, torch.nn.Module):
            return model
        model = inner


def _state_json(trainer_state: dict[str, Any], scheduler: Any, scaler: Any) -> dict[str, Any]:
    clash = [k for k in RESERVED_KEYS if k in trainer_state]
    if clash:
        raise StateFormatError(f"trainer_state uses reserved keys {clash}")
    state = dict(json_safe(trainer_state, "trainer_state"))
    state["checkpoint_format"] = FORMAT_VERSION
    state["scheduler_state"] = json_safe(scheduler.state_dict(), "scheduler state") if scheduler is not None else None
    state["scaler_state"] = json_safe(scaler.state_dict(), "scaler state") if scaler is not None else None
    state["rng_state"] = rng_mod.capture_rng_state()
    return state


# -- load ---------------------------------------------------------------------------------

def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    *,
    restore_rng: bool = True,
    allow_pickle: bool = False,
) -> dict[str, Any]:
    """Validate a checkpoint fully, then load it; returns the engine's state dict (with
    transformers' TrainerState fields under `"hf_state"`).

    Raises `CheckpointLoadError` with the model, optimizer, scheduler and scaler untouched
    when anything is missing, corrupt or does not fit. A foreign `.bin`/`.pt` file (pickle)
    is read only with `allow_pickle=True`, and then with `torch.load(weights_only=True)`.
    """
    path = Path(path)
    if path.is_file():
        return _load_foreign(path, model, allow_pickle)
    if not path.is_dir():
        raise CheckpointLoadError(f"checkpoint {path} does not exist")
    try:
        return _load_dir(path, model, optimizer, scheduler, scaler, restore_rng)
    except StateFormatError as exc:
        raise CheckpointLoadError(f"checkpoint {path} refused: {exc}; nothing was loaded") from None


def read_state(path: str | Path) -> dict[str, Any]:
    """The engine's state of checkpoint `path` (`tuitrain_state.json`, or a format-1
    `trainer_state.json`), checked for its reserved keys; `StateFormatError` otherwise."""
    path = Path(path)
    name = STATE_FILE
    if not (path / STATE_FILE).exists():
        if not _legacy(path):
            raise StateFormatError(f"{STATE_FILE} is missing (an incomplete checkpoint, or not tuitrain's)")
        name = HF_STATE_FILE
    state = read_json(path / name)
    if not isinstance(state, dict):
        raise StateFormatError(f"{name} is not an object")
    missing = [k for k in RESERVED_KEYS if k not in state]
    if missing:
        raise StateFormatError(f"{name} lacks {', '.join(missing)}")
    if state["checkpoint_format"] not in (1, FORMAT_VERSION):
        raise StateFormatError(f"checkpoint format {state['checkpoint_format']} is not supported (expected {FORMAT_VERSION})")
    return state


def _legacy(path: Path) -> bool:
    """A format-1 checkpoint: our state inside trainer_state.json."""
    try:
        old = read_json(path / HF_STATE_FILE)
    except (OSError, StateFormatError):
        return False
    return isinstance(old, dict) and "checkpoint_format" in old


def read_hf_state(path: str | Path, state: dict[str, Any]) -> dict[str, Any]:
    """transformers' TrainerState fields of a checkpoint, verified against the manifest of
    `state` (a format-1 checkpoint kept them in its one state file)."""
    files = state.get("checkpoint_files") or {}
    if state["checkpoint_format"] == 1:
        return state
    hf = read_json(Path(path) / HF_STATE_FILE, files.get(HF_STATE_FILE))
    if not isinstance(hf, dict):
        raise StateFormatError(f"{HF_STATE_FILE} is not an object")
    return hf


def _load_dir(path, model, optimizer, scheduler, scaler, restore_rng) -> dict[str, Any]:
    if not (path / STATE_FILE).exists() and optimizer is None:
        foreign = [p for p in ("model.safetensors", "pytorch_model.bin") if (path / p).exists()]
        if foreign and not _legacy(path):  # a transformers checkpoint, or weights alone
            return _load_foreign(path / foreign[0], model, allow_pickle=False)
    state = read_state(path)
    files = state["checkpoint_files"]
    if not isinstance(files, dict) or "model.safetensors" not in files:
        raise StateFormatError(f"{STATE_FILE} has no file manifest")

    model = _unwrap(model)
    loaded, meta = read_tensors(path / "model.safetensors", files["model.safetensors"])
    new_model = _check_model(model, loaded, meta)

    new_optim = None
    if optimizer is not None:
        if "optimizer.safetensors" not in files:
            raise StateFormatError("it holds no optimizer state (saved with save_only_model)")
        otensors, _ = read_tensors(path / "optimizer.safetensors", files["optimizer.safetensors"])
        # The optimizer keeps these tensors (load_state_dict does not copy same-dtype ones):
        # own them instead of viewing the read-only file buffer.
        otensors = {k: v.clone() for k, v in otensors.items()}
        ometa = read_json(path / "optimizer.json", files.get("optimizer.json"))
        if not isinstance(ometa, dict) or "param_groups" not in ometa:
            raise StateFormatError("optimizer.json lacks param_groups")
        new_optim = unflatten_optimizer(otensors, ometa, optimizer.state_dict())
        _check_optimizer(optimizer, new_optim)

    sched_state = from_json_safe(state["scheduler_state"])
    if scheduler is not None:
        live = scheduler.state_dict()
        if not isinstance(sched_state, dict):
            raise StateFormatError("it holds no scheduler state")
        lack = sorted(set(live) - set(sched_state))
        if lack:
            raise StateFormatError(f"scheduler state lacks {', '.join(lack)}")
    scaler_state = from_json_safe(state["scaler_state"])
    if scaler is not None and scaler.is_enabled():
        if not isinstance(scaler_state, dict) or "scale" not in scaler_state:
            raise StateFormatError("it holds no grad-scaler state (saved without fp16?)")
    why = rng_mod.check_rng_state(state["rng_state"])
    if restore_rng and why:
        raise StateFormatError(why)
    hf_state = read_hf_state(path, state)

    # Everything checked: now mutate.
    if fsdp.is_sharded(model):  # each rank keeps its shard of the full tensors (a collective)
        fsdp.load_full_state(model, optimizer, new_model, new_optim)
    else:
        with torch.no_grad():
            live = model.state_dict()
            for name, tensor in new_model.items():
                live[name].copy_(tensor)
        if new_optim is not None:
            optimizer.load_state_dict(new_optim)
    if scheduler is not None:
        scheduler.load_state_dict(sched_state)
    if scaler is not None and scaler.is_enabled():
        scaler.load_state_dict(scaler_state)
    if restore_rng:
        rng_mod.restore_rng_state(state["rng_state"])
    return {**state, "hf_state": hf_state}


def _check_model(model: torch.nn.Module, loaded: dict[str, torch.Tensor], meta: dict[str, str]) -> dict[str, torch.Tensor]:
    try:
        aliases = json.loads(meta.get(ALIASES_KEY, "{}"))
    except ValueError:
        raise StateFormatError("model.safetensors has corrupt alias metadata") from None
    full = dict(loaded)
    for alias, target in aliases.items():
        if target not in loaded:
            raise StateFormatError(f"model.safetensors alias {alias!r} points to missing {target!r}")
        full[alias] = loaded[target]
    live = model.state_dict()
    missing = sorted(set(live) - set(full))
    unexpected = sorted(set(full) - set(live))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {_few(missing)}")
        if unexpected:
            parts.append(f"unexpected keys {_few(unexpected)}")
        raise StateFormatError(f"model.safetensors does not match the model ({'; '.join(parts)}) — a checkpoint of a different model?")
    for name, t in live.items():
        got = full[name]
        if tuple(got.shape) != tuple(t.shape):
            raise StateFormatError(f"{name} has shape {tuple(got.shape)} in the checkpoint, {tuple(t.shape)} in the model")
        if got.dtype != t.dtype:
            raise StateFormatError(f"{name} has dtype {got.dtype} in the checkpoint, {t.dtype} in the model")
    return full


def _check_optimizer(optimizer: torch.optim.Optimizer, sd: dict[str, Any]) -> None:
    live_groups = optimizer.param_groups
    params: list[torch.Tensor] = []
    for i, (saved, live) in enumerate(zip(sd["param_groups"], live_groups)):
        if not isinstance(saved["params"], list) or len(saved["params"]) != len(live["params"]):
            raise StateFormatError(f"optimizer group {i} has {len(live['params'])} parameters, the checkpoint a different number")
        params.extend(live["params"])
    ids = [p for g in sd["param_groups"] for p in g["params"]]
    if sorted(ids) != list(range(len(params))):
        raise StateFormatError("optimizer.json param indices are inconsistent")
    by_index = dict(zip(ids, params))
    for index, values in sd["state"].items():
        if index not in by_index:
            raise StateFormatError(f"optimizer state for unknown parameter {index}")
        p = by_index[index]
        for name, value in values.items():
            if isinstance(value, torch.Tensor) and name in MATCHING_SHAPE_STATES:
                if tuple(value.shape) != tuple(p.shape):
                    raise StateFormatError(
                        f"optimizer state {index}.{name} has shape {tuple(value.shape)}, parameter {tuple(p.shape)}"
                    )
                if not value.is_floating_point():
                    raise StateFormatError(f"optimizer state {index}.{name} has dtype {value.dtype}")


def _few(names: list[str]) -> str:
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")


def load_foreign_weights(path: str | Path, model: torch.nn.Module) -> None:
    """The weights of a checkpoint tuitrain did not write (a transformers `checkpoint-N/`, or a
    weights file), for a run started with `--allow-foreign-checkpoint`: safetensors as they are, a
    pickle only through `torch.load(weights_only=True)`. Nothing else of it is ever read."""
    from tuitrain.config.checkpoint_field import foreign_weights

    weights = foreign_weights(Path(path))
    if weights is None:
        raise CheckpointLoadError(f"checkpoint {path} refused: it holds no weights file; nothing was loaded")
    _load_foreign(weights, model, allow_pickle=True)


def _load_foreign(path: Path, model: torch.nn.Module, allow_pickle: bool) -> dict[str, Any]:
    """Weights only, from a file that is not one of our checkpoints."""
    model = _unwrap(model)
    try:
        if path.suffix == ".safetensors":
            loaded, meta = read_tensors(path, None)
        elif path.suffix in (".bin", ".pt", ".pth"):
            if not allow_pickle:
                raise CheckpointLoadError(
                    f"{path} is a pickle file; pickles can run code. Load it only if you trust it, "
                    "with allow_pickle=True (read with torch.load(weights_only=True))"
                )
            try:
                loaded = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # unpickling errors come in many types
                raise StateFormatError(f"{path.name} cannot be read with weights_only=True ({exc})") from None
            if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
                raise StateFormatError(f"{path.name} is not a flat dict of tensors")
            meta = {}
        else:
            raise StateFormatError(f"{path.name}: unknown weights format (expected .safetensors, .bin or .pt)")
        full = _check_model(model, loaded, meta)
    except StateFormatError as exc:
        raise CheckpointLoadError(f"checkpoint {path} refused: {exc}; nothing was loaded") from None
    with torch.no_grad():
        live = model.state_dict()
        for name, tensor in full.items():
            live[name].copy_(tensor)
    return {}


# -- listing, rotation, cleanup -------------------------------------------------------------

def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete `checkpoint-N/` directories, oldest step first (`tuitrain.layout`)."""
    return layout.complete_checkpoints(output_dir)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    return layout.latest_complete_checkpoint(output_dir)


def line_checkpoints(output_dir: str | Path, newest: str | Path | int | None = None) -> list[Path]:
    """The complete checkpoints of the current line, oldest first: every one up to `newest`
    (the checkpoint just written, or its step). A checkpoint of a later step belongs to a line
    the run left (a trainer resumed by hand from an older checkpoint): never counted, never
    deleted here. `tuitrain resume --checkpoint` sets such checkpoints aside first."""
    ordered = list_checkpoints(output_dir)
    if newest is None:
        return ordered
    last = newest if isinstance(newest, int) else layout.checkpoint_step(newest)
    return [p for p in ordered if layout.checkpoint_step(p) <= last]


def _trash(path: Path) -> None:
    trash = path.with_name(layout.leftover_name(layout.checkpoint_step(path), "trash"))
    os.rename(path, trash)  # gone from listings at once, even if the delete is cut short
    shutil.rmtree(trash, ignore_errors=True)


def rotate_checkpoints(output_dir: str | Path, limit: int | None, keep: str | Path | None = None,
                       newest: str | Path | int | None = None) -> list[Path]:
    """Delete old checkpoints of the current line (`line_checkpoints`) beyond `limit` as HF
    does, never `keep` (the best) nor `newest` (the one just written); returns the deleted."""
    if not limit or limit <= 0:
        return []
    ordered = line_checkpoints(output_dir, newest)
    best = Path(keep).resolve() if keep else None
    resolved = [p.resolve() for p in ordered]
    if best is not None and best in resolved:
        i = resolved.index(best)
        for j in range(i, len(ordered) - 2):  # HF moves the best next to the newest
            ordered[j], ordered[j + 1] = ordered[j + 1], ordered[j]
        resolved = [p.resolve() for p in ordered]
        if limit == 1 and resolved[-1] != best:
            limit = 2
    doomed = ordered[: max(0, len(ordered) - limit)]
    for path in doomed:
        _trash(path)
    return doomed


def keep_only(output_dir: str | Path, keep: str | Path, newest: str | Path | int | None = None) -> list[Path]:
    """Delete every checkpoint of the current line but `keep` (HF's end of training with
    save_total_limit = 1 and a best checkpoint: the newest goes too); returns the deleted."""
    keep = Path(keep).resolve()
    doomed = [p for p in line_checkpoints(output_dir, newest) if p.resolve() != keep]
    for path in doomed:
        _trash(path)
    return doomed
