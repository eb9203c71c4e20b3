"""GPT on nanoGPT-style token files (`train.bin` / `val.bin`, uint16)."""

from __future__ import annotations

from pathlib import Path

import torch

from tuitrain.errors import TuitrainError

from .bundle import TaskBundle
from .char_gpt import BlockDataset
from .gpt import GPT, GPTConfig
from .options import resolve_options

DEFAULTS = {
    "data_dir": "",
    "vocab_size": 50304,
    "block_size": 1024,
    "n_layer": 12,
    "n_head": 12,
    "n_embd": 768,
    "dropout": 0.0,
    "bias": False,
    "examples_per_epoch": 0,
}


def load_tokens(path: Path) -> "_Tokens":
    """A uint16 token file: memory-mapped through numpy when installed, else read by torch."""
    size = path.stat().st_size
    if size % 2:
        raise TuitrainError(f"task.options.data_dir: {path} has an odd byte count; expected uint16 tokens")
    try:
        import numpy as np
    except ImportError:
        return _Tokens(torch.from_file(str(path), shared=False, size=size // 2, dtype=torch.uint16))
    return _Tokens(np.memmap(path, dtype=np.uint16, mode="r"))


class _Tokens:
    """A uint16 token array (numpy memmap or tensor); slices come back as int64 tensors."""

    def __init__(self, tokens):
        self._t = tokens

    def __len__(self) -> int:
        return len(self._t)

    def __getitem__(self, s) -> torch.Tensor:
        part = self._t[s]
        if isinstance(part, torch.Tensor):
            return part.to(torch.int64)
        return torch.from_numpy(part.astype("int64"))


def build(options: dict, args, ctx=None) -> TaskBundle:
    """The token-GPT task bundle; `val.bin` is optional (no evaluation without it)."""
    opts = resolve_options("token_gpt", options, DEFAULTS)
    if not opts["data_dir"]:
        raise TuitrainError(
            "task.options.data_dir: token_gpt needs a folder holding train.bin (and val.bin), "
            "as written by nanoGPT's prepare.py"
        )
    folder = Path(str(opts["data_dir"])).expanduser()
    train_path = folder / "train.bin"
    if not train_path.is_file():
        raise TuitrainError(f"task.options.data_dir: {train_path} does not exist")
    block = int(opts["block_size"])
    train = BlockDataset(load_tokens(train_path), block, int(opts["examples_per_epoch"]))
    val_path = folder / "val.bin"
    val = BlockDataset(load_tokens(val_path), block) if val_path.is_file() else None
    model = GPT(
        GPTConfig(
            vocab_size=int(opts["vocab_size"]),
            block_size=block,
            n_layer=int(opts["n_layer"]),
            n_head=int(opts["n_head"]),
            n_embd=int(opts["n_embd"]),
            dropout=float(opts["dropout"]),
            bias=bool(opts["bias"]),
        )
    )
    return TaskBundle(model=model, train_dataset=train, eval_dataset=val, tokens_per_example=block)
