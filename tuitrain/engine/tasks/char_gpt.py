"""Char-level GPT on the built-in corpus (CPython's pydoc topics) or any text."""

from __future__ import annotations

from pathlib import Path

import torch

from tuitrain.errors import TuitrainError

from .bundle import TaskBundle
from .gpt import GPT, GPTConfig
from .options import resolve_options

DEFAULTS = {
    "text": "",
    "block_size": 128,
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "dropout": 0.0,
    "bias": False,
    "val_fraction": 0.1,
    "examples_per_epoch": 0,
}

# Fixed so that every run (and every rank) sees the same random windows.
_OFFSET_SEED = 1234


def builtin_corpus() -> str:
    """The text of `pydoc_data.topics.topics`, values joined in sorted key order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def read_text(spec: str) -> str:
    """The corpus a `text` option names: "" = built-in, a file, or a folder of files."""
    if not spec:
        return builtin_corpus()
    path = Path(spec).expanduser()
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            raise TuitrainError(f"task.options.text: folder {path} holds no files")
    else:
        raise TuitrainError(f"task.options.text: {path} does not exist (give a text file or folder)")
    parts = []
    for f in files:
        try:
            parts.append(f.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise TuitrainError(f"task.options.text: {f} is not UTF-8 text") from None
    text = "\n".join(parts)
    if len(text) < 2:
        raise TuitrainError(f"task.options.text: {path} holds too little text to train on")
    return text


class BlockDataset(torch.utils.data.Dataset):
    """Fixed blocks of a 1-D token tensor: item i is `{"input_ids", "labels"}` shifted by one.

    With `examples` > 0 the items are that many windows at pseudo-random offsets drawn once
    from a fixed seed, so every epoch and every process sees the same items.
    """

    def __init__(self, tokens: torch.Tensor, block_size: int, examples: int = 0):
        if len(tokens) < block_size + 1:
            raise TuitrainError(
                f"task.options.block_size: {block_size} needs at least {block_size + 1} tokens, "
                f"the data holds {len(tokens)} (lower block_size or give more text)"
            )
        self.tokens = tokens
        self.block_size = block_size
        if examples > 0:
            gen = torch.Generator().manual_seed(_OFFSET_SEED)
            self.offsets = torch.randint(0, len(tokens) - block_size, (examples,), generator=gen)
        else:
            self.offsets = None
            self.count = (len(tokens) - 1) // block_size

    def __len__(self) -> int:
        return len(self.offsets) if self.offsets is not None else self.count

    def __getitem__(self, i: int) -> dict:
        if not 0 <= i < len(self):
            raise IndexError(i)
        start = int(self.offsets[i]) if self.offsets is not None else i * self.block_size
        chunk = self.tokens[start : start + self.block_size + 1].long()
        return {"input_ids": chunk[:-1].clone(), "labels": chunk[1:].clone()}


class CharVocab:
    """The sorted set of characters of a corpus."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text if c in self.index]

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids if 0 <= int(i) < len(self.chars))


def build(options: dict, args, ctx=None) -> TaskBundle:
    """The char-GPT task bundle."""
    opts = resolve_options("char_gpt", options, DEFAULTS)
    block = int(opts["block_size"])
    if block < 1:
        raise TuitrainError("task.options.block_size: must be at least 1")
    frac = float(opts["val_fraction"])
    if not 0.0 <= frac < 1.0:
        raise TuitrainError(f"task.options.val_fraction: {frac} is outside [0, 1)")
    text = read_text(str(opts["text"]))
    vocab = CharVocab(text)
    data = torch.tensor(vocab.encode(text), dtype=torch.int16 if len(vocab) < 2**15 else torch.int32)
    n_val = int(len(data) * frac)
    if n_val and n_val < block + 1:
        n_val = min(block + 1, len(data) - block - 1)
    train_tokens, val_tokens = data[: len(data) - n_val], data[len(data) - n_val :]
    train = BlockDataset(train_tokens, block, int(opts["examples_per_epoch"]))
    val = BlockDataset(val_tokens, block) if n_val >= block + 1 else None
    model = GPT(
        GPTConfig(
            vocab_size=len(vocab),
            block_size=block,
            n_layer=int(opts["n_layer"]),
            n_head=int(opts["n_head"]),
            n_embd=int(opts["n_embd"]),
            dropout=float(opts["dropout"]),
            bias=bool(opts["bias"]),
        )
    )
    prompt_source = val_tokens if val is not None else train_tokens

    def sample_prompt(text: str = "", length: int = min(16, block)) -> torch.Tensor:
        """`text` encoded (characters outside the vocabulary dropped), else a fixed prompt:
        the first characters of the held-out text. Shape (1, T), at most block_size long."""
        ids = vocab.encode(text)[-block:] if text else []
        if ids:
            return torch.tensor(ids, dtype=torch.long)[None]
        return prompt_source[:length].long()[None]

    return TaskBundle(
        model=model,
        train_dataset=train,
        eval_dataset=val,
        tokens_per_example=block,
        decode=vocab.decode,
        sample_prompt=sample_prompt,
    )
