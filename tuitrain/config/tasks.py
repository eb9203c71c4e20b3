"""The built-in tasks' option schemas, and their training-set sizes where known without torch.

The engine (`tuitrain.engine.tasks`) builds the tasks; this module only describes
their `[task.options]` so a preset can be validated and its step counts derived
(`TaskInfo.train_examples`) in the UI, which never imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from tuitrain.config.schema import BOOL, FLOAT, INT, STR, TABLE, Field, make


def _opt(task: str, key: str, type_: str, default: Any, help_: str, **kw: Any) -> Field:
    return make("task.options", key, type_, default, help_, ours=True, extra={"task": task}, **kw)


@dataclass(frozen=True)
class TaskInfo:
    """A built-in task: title, doc, its options, how many training examples it has, and
    whether it can write text samples (`sample_every`)."""

    title: str
    doc: str
    options: dict[str, Field]
    counter: Callable[[dict], int | None] | None = None
    samples: bool = False

    def defaults(self) -> dict[str, Any]:
        """Every option at its default."""
        return {k: f.default for k, f in self.options.items()}

    def train_examples(self, options: dict) -> int | None:
        """Training examples per epoch for these options, or None where only the engine knows."""
        if self.counter is None:
            return None
        merged = {**self.defaults(), **(options or {})}
        try:
            return self.counter(merged)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError):
            return None


@lru_cache(maxsize=1)
def builtin_corpus_length() -> int:
    """Characters in the built-in corpus (CPython's `pydoc_data.topics`, joined as the engine does)."""
    from pydoc_data.topics import topics

    return len("\n\n".join(topics[key] for key in sorted(topics)))


def _char_gpt_examples(o: dict) -> int | None:
    if int(o["examples_per_epoch"]) > 0:
        return int(o["examples_per_epoch"])
    if o["text"]:
        return None  # a user's file or folder: counted by the engine
    n, block, frac = builtin_corpus_length(), int(o["block_size"]), float(o["val_fraction"])
    n_val = int(n * frac)
    if n_val and n_val < block + 1:
        n_val = min(block + 1, n - block - 1)
    train = n - n_val
    return max(0, (train - 1) // block)


@lru_cache(maxsize=1)
def builtin_corpus_bytes() -> int:
    """UTF-8 bytes of the built-in corpus (the byte tokenizer's token count)."""
    from pydoc_data.topics import topics

    return len("\n\n".join(topics[key] for key in sorted(topics)).encode("utf-8"))


def _hf_causal_lm_examples(o: dict) -> int | None:
    """Blocks of the built-in corpus under the byte tokenizer (other tokenizers: the engine counts)."""
    model_dir = Path(str(o["model"])).expanduser()
    tokenizer = o["tokenizer"] or ("" if model_dir.is_dir() and str(o["model"]) else "bytes")
    if o["text"] or tokenizer != "bytes":
        return None
    n, block, frac = builtin_corpus_bytes(), int(o["block_size"]), float(o["val_fraction"])
    n_val = int(n * frac)
    if n_val and n_val < block:
        n_val = min(block, n - block)
    return max(0, (n - n_val) // block)


def _token_gpt_examples(o: dict) -> int | None:
    return int(o["examples_per_epoch"]) if int(o["examples_per_epoch"]) > 0 else None


def _modular_examples(o: dict) -> int:
    p = int(o["modulus"])
    pairs = p * (p - 1) if o["operation"] == "div" else p * p
    return max(1, int(pairs * float(o["train_fraction"])))


def _regression_examples(o: dict) -> int:
    n = int(o["n_samples"])
    return n - max(1, int(n * 0.2))


def _gpt_options(task: str, block: int, layers: int, heads: int, embd: int) -> list[Field]:
    return [
        _opt(task, "block_size", INT, block, "Context length in tokens.", minimum=1),
        _opt(task, "n_layer", INT, layers, "Transformer blocks.", minimum=1),
        _opt(task, "n_head", INT, heads, "Attention heads (must divide n_embd).", minimum=1),
        _opt(task, "n_embd", INT, embd, "Embedding width.", minimum=1),
        _opt(task, "dropout", FLOAT, 0.0, "Dropout probability.", minimum=0.0, maximum=1.0,
             exclusive_maximum=True),
        _opt(task, "bias", BOOL, False, "Biases in linear and norm layers."),
    ]


def _by_key(fields: list[Field]) -> dict[str, Field]:
    return {f.key: f for f in fields}


BUILTIN_TASKS: dict[str, TaskInfo] = {
    "char_gpt": TaskInfo(
        "Char-level GPT",
        "A small GPT that predicts the next character of a text (CPython's pydoc topics by default).",
        _by_key([
            _opt("char_gpt", "text", STR, "", "A text file or folder; empty: CPython's pydoc_data.topics."),
            *_gpt_options("char_gpt", 128, 4, 4, 128),
            _opt("char_gpt", "val_fraction", FLOAT, 0.1, "Share of the text held out for evaluation.",
                 minimum=0.0, maximum=1.0, exclusive_maximum=True),
            _opt("char_gpt", "examples_per_epoch", INT, 0,
                 "Random windows per epoch (0: one per block of the corpus).", minimum=0),
        ]),
        _char_gpt_examples,
        samples=True,
    ),
    "token_gpt": TaskInfo(
        "Token GPT",
        "GPT on nanoGPT-style train.bin / val.bin token files (uint16).",
        _by_key([
            _opt("token_gpt", "data_dir", STR, "", "Folder holding train.bin and val.bin."),
            _opt("token_gpt", "vocab_size", INT, 50304, "Vocabulary size (GPT-2's, padded).", minimum=1),
            *_gpt_options("token_gpt", 1024, 12, 12, 768),
            _opt("token_gpt", "examples_per_epoch", INT, 0,
                 "Random windows per epoch (0: one per block of train.bin).", minimum=0),
        ]),
        _token_gpt_examples,
    ),
    "modular": TaskInfo(
        "Modular arithmetic",
        "a ∘ b mod p with a small transformer: the grokking experiment.",
        _by_key([
            _opt("modular", "modulus", INT, 97, "The modulus p (prime for div).", minimum=2),
            _opt("modular", "operation", STR, "add", "The operation.", choices=("add", "sub", "mul", "div")),
            _opt("modular", "train_fraction", FLOAT, 0.3, "Share of all equations used for training.",
                 minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
            _opt("modular", "n_layer", INT, 2, "Transformer blocks.", minimum=1),
            _opt("modular", "n_head", INT, 4, "Attention heads.", minimum=1),
            _opt("modular", "n_embd", INT, 128, "Embedding width.", minimum=1),
            _opt("modular", "dropout", FLOAT, 0.0, "Dropout probability.", minimum=0.0, maximum=1.0,
                 exclusive_maximum=True),
        ]),
        _modular_examples,
    ),
    "regression": TaskInfo(
        "Regression",
        "A tiny MLP fitting synthetic data (80 % train, 20 % eval).",
        _by_key([
            _opt("regression", "n_samples", INT, 1024, "Examples generated.", minimum=5),
            _opt("regression", "n_features", INT, 8, "Input features.", minimum=1),
            _opt("regression", "hidden", INT, 32, "Hidden width.", minimum=1),
            _opt("regression", "noise", FLOAT, 0.1, "Noise added to the targets.", minimum=0.0),
        ]),
        _regression_examples,
    ),
    "hf_causal_lm": TaskInfo(
        "Hugging Face causal LM",
        "Fine-tune a local transformers causal LM (a folder with config.json and safetensors weights), or "
        "pre-train one of a model type from scratch, on a local text; offline, nothing is downloaded.",
        _by_key([
            _opt("hf_causal_lm", "model", STR, "gpt2",
                 "A local model folder (config.json + safetensors weights) to fine-tune, or a model type "
                 "(gpt2, llama, …) to train from scratch."),
            _opt("hf_causal_lm", "config", TABLE, {},
                 "Config values set on the model's config, e.g. {n_layer = 2, n_embd = 64} (from scratch) "
                 "or {resid_pdrop = 0.0} (a folder)."),
            _opt("hf_causal_lm", "tokenizer", STR, "",
                 "A local tokenizer folder, or \"bytes\" (UTF-8 bytes and an end-of-text token); empty: the "
                 "model folder's tokenizer when it has one, else bytes."),
            _opt("hf_causal_lm", "text", STR, "", "A text file or folder; empty: CPython's pydoc_data.topics."),
            _opt("hf_causal_lm", "block_size", INT, 128, "Tokens per training example (packed blocks).", minimum=1),
            _opt("hf_causal_lm", "val_fraction", FLOAT, 0.1, "Share of the tokens held out for evaluation.",
                 minimum=0.0, maximum=1.0, exclusive_maximum=True),
        ]),
        _hf_causal_lm_examples,
        samples=True,
    ),
}


def is_entry_point(name: str) -> bool:
    """`package.module:function` or `path/file.py:function`."""
    mod, sep, func = name.rpartition(":")
    return bool(sep and mod and func.isidentifier())


def train_examples(name: str, options: dict) -> int | None:
    """Training examples per epoch of a task, or None when unknown (plug-ins, user data)."""
    info = BUILTIN_TASKS.get(name)
    return info.train_examples(options) if info else None
