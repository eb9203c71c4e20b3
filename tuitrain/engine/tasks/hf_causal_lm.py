"""Fine-tune or pre-train a transformers causal LM, offline, on a local text.

- `model`: a local folder holding `config.json` and safetensors weights (fine-tuning; loaded
  with `AutoModelForCausalLM.from_pretrained(..., use_safetensors=True)`: pickle weights are
  refused), or a model type (`"gpt2"`, `"llama"`, …) to train from scratch from
  `AutoConfig.for_model(type, **config)`. `config` overrides config values either way.
- `tokenizer`: a local tokenizer folder (`AutoTokenizer`), `"bytes"` (the 256 byte values and
  an end-of-text token, nothing to load), or `""`: the model folder's own tokenizer when it has
  one, else bytes.
- `text`, `block_size`, `val_fraction`: the corpus (as `char_gpt`'s: a file or folder, empty
  for CPython's documentation text), tokenized whole and packed into blocks of `block_size`
  tokens (labels = input ids: the model shifts them), the last `val_fraction` held out.

Samples come from the model's own `generate`; checkpoints and the final model hold what
`save_pretrained` writes, the tokenizer's files included.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tuitrain.errors import TuitrainError

from ..collate import default_data_collator
from .bundle import TaskBundle
from .char_gpt import read_text
from .options import resolve_options

DEFAULTS = {"model": "gpt2", "config": {}, "tokenizer": "", "text": "", "block_size": 128, "val_fraction": 0.1}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")


def _transformers():
    try:
        import transformers  # noqa: PLC0415
    except ImportError:
        raise TuitrainError("task.name: hf_causal_lm needs the package transformers, which is not installed "
                            "(pip install transformers)") from None
    transformers.logging.set_verbosity_error()
    return transformers


class ByteTokenizer:
    """Text as its UTF-8 bytes (ids 0–255) and one end-of-text token (256)."""

    eos_token_id = 256
    vocab_size = 257

    def __len__(self) -> int:
        return self.vocab_size

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids) -> str:
        return bytes(int(i) for i in ids if 0 <= int(i) < 256).decode("utf-8", errors="replace")


class PackedBlocks(torch.utils.data.Dataset):
    """Consecutive `block`-token slices of a 1-D token tensor; item i: `input_ids` = `labels`."""

    def __init__(self, tokens: torch.Tensor, block: int) -> None:
        self.tokens, self.block = tokens, block

    def __len__(self) -> int:
        return len(self.tokens) // self.block

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        ids = self.tokens[i * self.block:(i + 1) * self.block].long()
        return {"input_ids": ids, "labels": ids.clone()}


def _folder(spec: str) -> Path | None:
    """`spec` as an existing folder, or None."""
    path = Path(spec).expanduser()
    return path if spec and path.is_dir() else None


def load_tokenizer(spec: str, model_folder: Path | None):
    """The tokenizer an option names: `ByteTokenizer`, or transformers' from a local folder."""
    if spec == "bytes" or (not spec and not (model_folder and any((model_folder / f).is_file()
                                                                   for f in TOKENIZER_FILES))):
        return ByteTokenizer()
    folder = _folder(spec) if spec else model_folder
    if folder is None:
        raise TuitrainError(f"task.options.tokenizer: {spec} is not a folder (give a local tokenizer folder, "
                            "or \"bytes\"; nothing is downloaded)")
    try:
        return _transformers().AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise TuitrainError(f"task.options.tokenizer: cannot load a tokenizer from {folder}: "
                            f"{str(exc).splitlines()[0]}") from None


def _config_overrides(config: dict, tokenizer) -> dict:
    """A new model's vocabulary and special tokens follow the tokenizer, unless `config` sets them."""
    vocab = len(tokenizer)
    out = {"vocab_size": vocab}
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        value = getattr(tokenizer, name, None)
        if value is None and name == "bos_token_id":
            value = tokenizer.eos_token_id
        if value is not None:
            out[name] = value
    return {**out, **config}


def load_model(spec: str, config: dict, tokenizer):
    """The causal LM a `model` option names (a folder, else a model type built from scratch)."""
    tf = _transformers()
    folder = _folder(spec)
    if folder is not None:
        try:
            return tf.AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                                           **config)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TuitrainError(f"task.options.model: cannot load a causal LM from {folder}: "
                                f"{str(exc).splitlines()[0]} (it needs config.json and safetensors weights)") from None
    if not spec:
        raise TuitrainError("task.options.model: empty; give a local model folder or a model type such as \"gpt2\"")
    if "/" in spec or spec.startswith("."):
        raise TuitrainError(f"task.options.model: folder {spec} does not exist (nothing is downloaded)")
    try:
        cfg = tf.AutoConfig.for_model(spec, **_config_overrides(config, tokenizer))
    except ValueError:
        types = sorted(tf.models.auto.modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
        near = __import__("difflib").get_close_matches(spec, types, n=1)
        raise TuitrainError(f"task.options.model: {spec!r} is neither a folder nor a model type"
                            + (f" (did you mean {near[0]!r}?)" if near else " (e.g. \"gpt2\", \"llama\")")) from None
    try:
        return tf.AutoModelForCausalLM.from_config(cfg)
    except ValueError as exc:
        raise TuitrainError(f"task.options.model: {spec!r} has no causal-LM model class ({str(exc).splitlines()[0]})") \
            from None


def _encode(tokenizer, text: str) -> torch.Tensor:
    if isinstance(tokenizer, ByteTokenizer):
        return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).to(torch.int32)
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    return torch.tensor(ids, dtype=torch.int32)


def build(options: dict, args, ctx=None) -> TaskBundle:
    """The hf_causal_lm task bundle."""
    opts = resolve_options("hf_causal_lm", options, DEFAULTS)
    block, frac = int(opts["block_size"]), float(opts["val_fraction"])
    if block < 1:
        raise TuitrainError("task.options.block_size: must be at least 1")
    if not 0.0 <= frac < 1.0:
        raise TuitrainError(f"task.options.val_fraction: {frac} is outside [0, 1)")
    spec, config = str(opts["model"]), dict(opts["config"] or {})
    tokenizer = load_tokenizer(str(opts["tokenizer"]), _folder(spec))
    model = load_model(spec, config, tokenizer)
    positions = getattr(model.config, "max_position_embeddings", None)
    if isinstance(positions, int) and block > positions:
        raise TuitrainError(f"task.options.block_size: {block} is longer than the model's {positions} positions "
                            "(lower block_size, or raise the position count in config)")
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise TuitrainError(f"task.options.tokenizer: {len(tokenizer)} tokens, but the model's embedding holds "
                            f"{vocab} (pick the model's own tokenizer, or a model with a vocabulary this large)")
    tokens = _encode(tokenizer, read_text(str(opts["text"])))
    n_val = int(len(tokens) * frac)
    if n_val and n_val < block:
        n_val = min(block, len(tokens) - block)
    train = PackedBlocks(tokens[:len(tokens) - n_val], block)
    if len(train) == 0:
        raise TuitrainError(f"task.options.block_size: {block} needs at least {block} tokens for training, "
                            f"the text gives {len(tokens) - n_val} (lower block_size or give more text)")
    val = PackedBlocks(tokens[len(tokens) - n_val:], block) if n_val >= block else None
    prompt_source = val.tokens if val is not None else train.tokens

    def sample_prompt(text: str = "", length: int = min(16, block)) -> torch.Tensor:
        """`text` encoded, else the first tokens of the held-out text; shape (1, T)."""
        ids = _encode(tokenizer, text)[-block:] if text else prompt_source[:0]
        return (ids if len(ids) else prompt_source[:length]).long()[None]

    folder = _folder(spec)
    return TaskBundle(
        model=model, train_dataset=train, eval_dataset=val, tokens_per_example=block,
        collate_fn=default_data_collator,  # packed blocks need no padding (HF's run_clm does the same)
        decode=tokenizer.decode, sample_prompt=sample_prompt,
        processing_class=None if isinstance(tokenizer, ByteTokenizer) else tokenizer,
        model_card={"base_model": str(folder.resolve()) if folder else None,
                    "dataset": f"the text of {opts['text']}" if opts["text"] else
                    "CPython's documentation text (pydoc_data.topics)",
                    "tags": ["text-generation"]},
    )
