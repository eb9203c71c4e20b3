"""Generation settings for text samples: the preset's fields, then a GenerationConfig file.

`generation_config` names a JSON file in transformers' GenerationConfig format; the keys
our models understand override `generation_*` / `sample_*`. Hub names are not fetched.
"""

from __future__ import annotations

import json
from pathlib import Path

from tuitrain.errors import TuitrainError

FIELD = "evaluation.generation_config"


def load_generation_config(path: str | None) -> dict:
    """The JSON object of a GenerationConfig file (empty when none is set)."""
    if not path:
        return {}
    file = Path(path).expanduser()
    if file.is_dir():
        file = file / "generation_config.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TuitrainError(f"{FIELD}: {file} not found (give a GenerationConfig JSON file; "
                            "hub names are not fetched)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TuitrainError(f"{FIELD}: cannot read {file}: {exc}") from None
    if not isinstance(data, dict):
        raise TuitrainError(f"{FIELD}: {file} holds {type(data).__name__}, not a JSON object")
    return data


def sample_kwargs(args, config: dict, prompt_len: int) -> dict:
    """Keyword arguments for `model.generate`: preset fields, overridden by the file."""
    kwargs = {"max_new_tokens": int(args.sample_max_new_tokens),
              "temperature": float(args.sample_temperature), "top_k": args.sample_top_k}
    if args.generation_max_length:  # HF's generation_max_length is the whole sequence, prompt included
        kwargs["max_new_tokens"] = max(int(args.generation_max_length) - prompt_len, 1)
    beams = args.generation_num_beams
    if beams:
        kwargs["num_beams"] = int(beams)
    if config.get("max_new_tokens"):
        kwargs["max_new_tokens"] = int(config["max_new_tokens"])
    elif config.get("max_length"):  # HF counts the prompt in max_length
        kwargs["max_new_tokens"] = max(int(config["max_length"]) - prompt_len, 1)
    if config.get("temperature") is not None:
        kwargs["temperature"] = float(config["temperature"])
    if "top_k" in config:
        kwargs["top_k"] = int(config["top_k"]) if config["top_k"] else None
    if config.get("num_beams"):
        kwargs["num_beams"] = int(config["num_beams"])
    if config.get("do_sample") is False:
        kwargs["temperature"] = 0.0  # our models decode greedily at temperature 0
    return kwargs


def hf_generate_kwargs(kwargs: dict, model, prompt) -> dict:
    """`sample_kwargs` for a transformers model's own `generate`: temperature 0 decodes greedily,
    top_k unset samples from every token (HF's top_k = 0), and the new tokens stop where the
    model's positions end (a longer generation would index past its position table)."""
    out = {"max_new_tokens": kwargs["max_new_tokens"], "num_beams": kwargs.get("num_beams", 1),
           "attention_mask": prompt.new_ones(prompt.shape)}
    if kwargs["temperature"] > 0:
        out.update(do_sample=True, temperature=kwargs["temperature"], top_k=kwargs["top_k"] or 0)
    else:
        out["do_sample"] = False
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        out["max_new_tokens"] = max(1, min(out["max_new_tokens"], positions - int(prompt.shape[-1])))
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        eos = generation_config.eos_token_id
        if eos is not None:
            out["pad_token_id"] = eos[0] if isinstance(eos, (list, tuple)) else eos
    return out
