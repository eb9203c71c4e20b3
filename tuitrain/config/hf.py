"""Conversions between a preset and transformers' TrainingArguments.

`export_hf_dict` gives what `HfArgumentParser(TrainingArguments).parse_json_file`
accepts; `export_python` a `TrainingArguments(...)` snippet; `import_hf_json` turns
an HF arguments JSON (as `TrainingArguments.to_json_string()` writes it) into
preset TOML. Stdlib only: transformers is never imported here, so the field names
and defaults come from the schema, which is pinned to transformers 5.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tuitrain.config.schema import FIELDS, FLOAT, GROUP_KEYS, INT, S2S, STR_LIST, TA, Field
from tuitrain.config.writer import toml_key, toml_value
from tuitrain.errors import TuitrainError

# TrainingArguments fields (transformers 5) that presets do not carry: imported with a notice.
HF_UNSUPPORTED: tuple[str, ...] = (
    "use_liger_kernel",
    "liger_kernel_config", "use_cache", "neftune_noise_alpha", "project", "trackio_space_id",
    "trackio_bucket_id", "trackio_static_space_id", "eval_use_gather_object",
    "enable_jit_checkpoint", "hub_revision", "accelerator_config", "parallelism_config",
    "dataloader_in_order", "debug", "local_rank",
)
# Placeholders `to_json_string()` writes for secrets.
_REDACTED = ("<HUB_TOKEN>", "<PUSH_TO_HUB_TOKEN>", "<HUB_PRIVATE_REPO>")


def _hf_fields(*classes: str) -> list[Field]:
    return [f for f in FIELDS.values() if f.hf_class in classes and f.hf_name]


def _value(preset: Any, f: Field) -> Any:
    return getattr(preset.args, f.key, f.default)


def _output_dir(preset: Any) -> str:
    out = getattr(preset.args, "output_dir", "") or ""
    if out:
        return str(out)
    stem = Path(getattr(preset, "path", "") or "preset").stem or "preset"
    return f"runs/{stem}"


def _folded_values(preset: Any) -> dict[str, Any]:
    """HF-named values of the TrainingArguments fields, with dropped fields folded in.

    transformers 5 dropped `warmup_ratio`, `group_by_length` and
    `include_inputs_for_metrics`; their meaning survives in a fractional
    `warmup_steps`, `train_sampling_strategy` and `include_for_metrics`.
    """
    values = {f.hf_name: _value(preset, f) for f in _hf_fields(TA)}
    args = preset.args
    ratio = getattr(args, "warmup_ratio", 0.0) or 0.0
    if ratio and not values.get("warmup_steps"):
        values["warmup_steps"] = float(ratio) if ratio < 1 else 1.0
    if getattr(args, "group_by_length", False) and values.get("train_sampling_strategy") == "random":
        values["train_sampling_strategy"] = "group_by_length"
    if getattr(args, "include_inputs_for_metrics", False):
        extra = list(values.get("include_for_metrics") or [])
        values["include_for_metrics"] = extra if "inputs" in extra else ["inputs", *extra]
    if values.get("resume_from_checkpoint") == "last":
        values["resume_from_checkpoint"] = True  # HF's spelling: the newest checkpoint in output_dir
    values["output_dir"] = _output_dir(preset)
    return values


def export_hf_dict(preset: Any) -> dict[str, Any]:
    """TrainingArguments fields of `preset`, ready for `json.dump` and `HfArgumentParser`.

    Nulls are left out (HF's default applies); lists and tables stay JSON lists and
    objects. `output_dir` is always set (the preset's, else `runs/<preset name>`).
    """
    out: dict[str, Any] = {}
    for name, value in _folded_values(preset).items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)):
            value = list(value)
        elif isinstance(value, dict):
            value = json.loads(json.dumps(value))
        out[name] = value
    return out


def dropped_settings(preset: Any) -> list[str]:
    """Non-default preset fields that no HF class can carry (said next to an export)."""
    folded = {"warmup_ratio", "group_by_length", "include_inputs_for_metrics"}
    return [
        f"{f.group}.{f.key}"
        for f in FIELDS.values()
        if f.hf_name and f.hf_class is None and f.key not in folded and _value(preset, f) != f.default
    ]


def _python_literal(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{k!r}: {_python_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    return repr(value)


def export_python(preset: Any) -> str:
    """A `TrainingArguments(...)` snippet listing the fields that differ from HF's defaults.

    `Seq2SeqTrainingArguments` is used when a seq2seq-only field is not at its default.
    """
    values = _folded_values(preset)
    schema_defaults = {f.hf_name: f.default for f in _hf_fields(TA)}
    lines = [f"    output_dir={values.pop('output_dir')!r},"]
    for name, value in values.items():
        if value is None or value == schema_defaults.get(name):
            continue
        lines.append(f"    {name}={_python_literal(value)},")
    cls = "TrainingArguments"
    for f in _hf_fields(S2S):
        value = _value(preset, f)
        if value != f.default and value is not None:
            cls = "Seq2SeqTrainingArguments"
            lines.append(f"    {f.hf_name}={_python_literal(value)},")
    return f"from transformers import {cls}\n\nargs = {cls}(\n" + "\n".join(lines) + "\n)\n"


# --- import ---------------------------------------------------------------------------------

def _coerce(f: Field, value: Any, path: str) -> Any:
    if f.type == FLOAT and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if f.type == INT and isinstance(value, float) and value.is_integer():
        return int(value)
    if f.type == STR_LIST and isinstance(value, str):
        return [value]
    if isinstance(value, str) and f.type == "table" and value.strip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise TuitrainError(f"{path}: {f.hf_name}: not a JSON object ({exc.msg})") from None
    return value


def hf_dict_to_tables(data: dict[str, Any], path: str = "<json>") -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Group an HF arguments dict into preset tables of non-default values, plus notices."""
    by_hf = {f.hf_name: f for f in FIELDS.values() if f.hf_name and f.hf_class in (TA, S2S)}
    # Old names HF still accepts (and writes, mirrored): gradient_checkpointing → activation_checkpointing
    by_hf.update({a: f for f in by_hf.values() for a in f.aliases if a not in by_hf})
    unknown = sorted(k for k in data if k not in by_hf and k not in HF_UNSUPPORTED)
    if unknown:
        raise TuitrainError(
            f"{path}: not TrainingArguments fields: {', '.join(unknown)} "
            "(remove them, or check their spelling against transformers 5)"
        )
    notices = [
        f"{path}: {k}: not supported by tuitrain presets; left out"
        for k in data if k in HF_UNSUPPORTED and data[k] not in (None, False, "", [], {})
    ]
    tables: dict[str, dict[str, Any]] = {g: {} for g in GROUP_KEYS}
    for key, raw in data.items():
        f = by_hf.get(key)
        if f is None or raw is None or raw in _REDACTED:
            continue
        value = _coerce(f, raw, path)
        if value == f.default or (value in ({}, []) and not f.default):
            continue
        tables[f.group][f.key] = value
    if data.get("output_dir") in ("trainer_output",):
        tables["core"].pop("output_dir", None)
    return tables, notices


def tables_to_toml(tables: dict[str, dict[str, Any]], header: str = "") -> str:
    """Preset TOML (stdlib writer) from `{group: {key: value}}`; empty tables are left out."""
    parts = [header] if header else []
    for group in GROUP_KEYS:
        table = tables.get(group) or {}
        if not table:
            continue
        lines = [f"[{group}]"] + [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
        parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def import_hf_json(path: str | Path) -> str:
    """Preset TOML text from an HF arguments JSON file; notices for unsupported keys go in comments.

    Unknown keys raise `TuitrainError` naming them. Only values that differ from the
    defaults are written (a preset says only what it changes).
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TuitrainError(f"{p}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise TuitrainError(f"{p}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TuitrainError(f"{p}: expected a JSON object of TrainingArguments fields")
    tables, notices = hf_dict_to_tables(data, str(p))
    header = f"# Imported from {p.name} (HF TrainingArguments JSON).\n"
    header += "".join(f"# notice: {n}\n" for n in notices)
    return tables_to_toml(tables, header)
