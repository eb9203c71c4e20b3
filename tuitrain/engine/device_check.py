"""Which presets this machine's device cannot train, decided by the checks the trainer makes.

`python -m tuitrain.engine.device_check` reads a JSON list of `{"name", "toml"}` (presets as
TOML text) on stdin and prints a JSON object `{name: reason}` of those the device refuses
(fp16 without a GPU, bf16 where the device has none, TF32 before Ampere …). A sweep runs it
once before any member starts, so a member that cannot run is refused up front, in one line,
and not after its model is built.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tuitrain.errors import TuitrainError


def refusal(preset: Any) -> str | None:
    """Why this machine cannot train `preset` (None when it can), in one line."""
    import torch

    from tuitrain.engine import precision

    args = preset.args
    use_cpu = bool(args.use_cpu) or not torch.cuda.is_available()
    device = torch.device("cpu") if use_cpu else torch.device("cuda", 0)
    try:
        precision.compute_dtype(args, device)
        precision.eval_dtype(args, device)
        if args.tf32:
            if not torch.cuda.is_available():
                raise TuitrainError("precision.tf32: TF32 needs an NVIDIA Ampere or newer GPU; this machine has none")
            if torch.cuda.get_device_capability()[0] < 8:
                raise TuitrainError("precision.tf32: TF32 needs an Ampere or newer GPU (compute capability ≥ 8.0)")
    except TuitrainError as exc:
        return str(exc)
    return None


def main() -> int:
    from tuitrain.config import load_preset_text

    items = json.loads(sys.stdin.read() or "[]")
    out = {}
    for item in items:
        reason = refusal(load_preset_text(item["toml"], item["name"]))
        if reason:
            out[item["name"]] = reason
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
