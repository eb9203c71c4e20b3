"""The model card (`README.md`) of a run's final model, as transformers' `Trainer.create_model_card` writes
one: YAML front matter the Hub reads (library, base model, datasets, tags), what the model was
trained from and on, the last evaluation's results, the preset's arguments and the table of
evaluations over training."""

from __future__ import annotations

import json
import os
import sys
from importlib import metadata
from typing import Any

_NOT_METRICS = {"step", "epoch", "num_input_tokens_seen"}


def framework_versions() -> dict[str, str]:
    """tuitrain's, torch's and, where the run imported them, transformers' and datasets' versions."""
    out = {}
    for dist, module in (("tuitrain", None), ("torch", "torch"), ("transformers", "transformers"),
                         ("datasets", "datasets"), ("tokenizers", "tokenizers")):
        if module is not None and module not in sys.modules:
            continue
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _hub_id(name: Any) -> str | None:
    """`name` when it reads as a Hub repository id (not a local path)."""
    if not isinstance(name, str) or not name or os.path.exists(name) or name.startswith((".", "/", "~")):
        return None
    parts = name.split("/")
    return name if len(parts) <= 2 and all(parts) else None


def _metric_title(key: str) -> str:
    return key.removeprefix("eval_").replace("_", " ").title()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "No log" if value is None else str(value)


def _yaml_list(key: str, values: list[str]) -> list[str]:
    return [f"{key}:"] + [f"- {json.dumps(v)}" for v in values] if values else []


def results_table(log_history: list[dict]) -> tuple[list[str], list[list[str]]]:
    """HF's `parse_log_history`: one row per evaluation, with the last logged training loss."""
    header, rows, train_loss = [], [], None
    for entry in log_history:
        if "loss" in entry:
            train_loss = entry["loss"]
        metrics = [k for k in entry if k.startswith("eval_") and k not in _NOT_METRICS]
        if not metrics:
            continue
        if not header:
            others = [k for k in metrics if k != "eval_loss"]
            header = ["Training Loss", "Epoch", "Step", "Validation Loss", *(_metric_title(k) for k in others)]
            keys = others
        rows.append([_fmt(train_loss), _fmt(entry.get("epoch")), str(entry.get("step", "")),
                     _fmt(entry.get("eval_loss")), *(_fmt(entry.get(k)) for k in keys)])
    return header, rows


def model_card(name: str, *, task: str, model: Any, card: dict | None, arguments: dict[str, Any],
               log_history: list[dict], versions: dict[str, str], train_examples: int | None = None) -> str:
    """The README.md text. `card`: the task's `model_card` (base_model, datasets, dataset,
    language, license, tags); `arguments`: the preset's values that differ from the defaults."""
    card = dict(card or {})
    config = getattr(model, "config", None)
    base = card.get("base_model") or getattr(config, "_name_or_path", "") or None
    base_id = _hub_id(base)
    datasets = [d for d in (card.get("datasets") or []) if isinstance(d, str)]
    dataset = card.get("dataset") or (f"the {', '.join(datasets)} dataset" if datasets else f"the data of task {task}")
    tags = ["tuitrain", *[t for t in (card.get("tags") or []) if isinstance(t, str)]]
    front = ["---"]
    if "transformers" in versions:
        front.append("library_name: transformers")
    if card.get("license"):
        front.append(f"license: {json.dumps(str(card['license']))}")
    if card.get("language"):
        front.append(f"language: {json.dumps(str(card['language']))}")
    if base_id:
        front.append(f"base_model: {json.dumps(base_id)}")
    front += _yaml_list("tags", tags) + _yaml_list("datasets", datasets)
    front += ["model-index:", f"- name: {json.dumps(name)}", "  results: []", "---", ""]

    lines = [f"# {name}", ""]
    if train_examples:
        dataset += f" ({train_examples} training examples)"
    if base:
        link = f"[{base_id}](https://huggingface.co/{base_id})" if base_id else f"`{base}`"
        lines.append(f"This model is a fine-tuned version of {link} on {dataset}.")
    else:
        lines.append(f"This model was trained from scratch on {dataset}.")
    header, rows = results_table(log_history)
    last_eval = next((e for e in reversed(log_history) if any(k.startswith("eval_") for k in e)), None)
    if last_eval:
        lines += ["It achieves the following results on the evaluation set:"]
        lines += [f"- {_metric_title(k)}: {_fmt(v)}" for k, v in last_eval.items()
                  if k.startswith("eval_") and k not in _NOT_METRICS]
    lines += ["", "## Training procedure", "", "### Training hyperparameters", "",
              "The preset's arguments that differ from the defaults (tuitrain's names, which are "
              "transformers' `TrainingArguments` names):", ""]
    lines += [f"- {k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in arguments.items()] or ["- (none)"]
    if rows:
        lines += ["", "### Training results", "", "| " + " | ".join(header) + " |",
                  "|" + "|".join(":" + "-" * len(h) + ":" for h in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "### Framework versions", ""] + [f"- {k} {v}" for k, v in versions.items()] + [""]
    return "\n".join(front + lines)
