"""The files besides the weights that make a folder loadable with `from_pretrained`.

For a transformers `PreTrainedModel`, `write_pretrained_files(model, folder, processing_class)`
writes what its `save_pretrained` writes next to `model.safetensors`, the way it writes them:
the config's `dtype` and `architectures` set, `config.json`, `generation_config.json` for a
model that can generate, the modelling code of a remote-code model; and the tokenizer's (or
processor's) own `save_pretrained` files. The weights themselves are the checkpoint's
`model.safetensors` (every tensor once, `format = pt` in its metadata, as transformers reads it).
Nothing here imports transformers: a model is a `PreTrainedModel` only if transformers is
already imported.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from .collate import unwrap_model


def is_pretrained(model: Any) -> bool:
    """Whether `model` (unwrapped) is a transformers `PreTrainedModel`."""
    transformers = sys.modules.get("transformers")
    if transformers is None:
        return False
    try:
        return isinstance(unwrap_model(model), transformers.PreTrainedModel)
    except (AttributeError, ImportError):
        return False


def write_pretrained_files(model: Any, folder: str | Path, processing_class: Any = None) -> list[str]:
    """Write the non-weight files of `save_pretrained` into `folder`; returns the names written."""
    folder = Path(folder)
    before = set(os.listdir(folder))
    model = unwrap_model(model)
    if is_pretrained(model):
        config = model.config
        config.dtype = str(model.dtype).split(".")[1]
        config.architectures = [type(model).__name__.removeprefix("FSDP")]
        if model.is_remote_code():
            from transformers.dynamic_module_utils import custom_object_save  # noqa: PLC0415

            custom_object_save(model, str(folder), config=config)
        config.save_pretrained(str(folder))
        if model.can_generate() and getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(str(folder))
    if processing_class is not None and callable(getattr(processing_class, "save_pretrained", None)):
        processing_class.save_pretrained(str(folder))
    return sorted(set(os.listdir(folder)) - before)
