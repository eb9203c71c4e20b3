"""HF's `past_index`: one output of each forward pass goes back into the next one as `mems`.

For models that cache past hidden states (Transformer-XL, XLNet): the output at
`past_index` of step k is passed as the `mems` keyword of step k+1. As in HF's Trainer the
cache starts empty at each epoch and at each evaluation, and an evaluation keeps its own.
"""

from __future__ import annotations

from typing import Any

from tuitrain.errors import TuitrainError


def output_at(outputs: Any, index: int) -> Any:
    """The `index`-th output of a model: of a tuple, a dict (in key order) or an HF ModelOutput."""
    if isinstance(outputs, dict):
        values = list(outputs.values())
    elif isinstance(outputs, (tuple, list)):
        values = list(outputs)
    elif hasattr(outputs, "to_tuple"):
        values = list(outputs.to_tuple())
    else:
        values = [outputs]
    if index >= len(values):
        raise TuitrainError(f"evaluation.past_index: {index} is past the model's {len(values)} outputs "
                            "(set it to the index of the past states, or -1)")
    return values[index]


class PastState:
    """The cached past of one loop (training, or one evaluation); inactive when index < 0."""

    def __init__(self, index: int | None) -> None:
        self.index = -1 if index is None else int(index)
        self.past: Any = None

    def reset(self) -> None:
        """Forget the cache (a new epoch or an evaluation starts)."""
        self.past = None

    def feed(self, batch: dict) -> dict:
        """The batch, with `mems` set to the cached past when there is one."""
        if self.index < 0 or self.past is None:
            return batch
        return {**batch, "mems": self.past}

    def keep(self, outputs: Any) -> None:
        """Remember this step's past states for the next step."""
        if self.index >= 0:
            self.past = output_at(outputs, self.index)
