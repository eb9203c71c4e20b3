"""TensorBoard's debiased exponential moving average, in pure Python.

`smoothed[i] = last / (1 - weight ** n)` where `last` is the running EMA started at 0
and `n` the count of finite values seen so far; this removes the bias towards the
first value that a plain EMA started at 0 has. Non-finite values pass through
unchanged and do not disturb the average (as TensorBoard does).
"""

from __future__ import annotations

import math
from typing import Iterable

DEFAULT_WEIGHT = 0.6
MAX_WEIGHT = 0.99


def clamp_weight(weight: float) -> float:
    """Keep a smoothing weight in [0, MAX_WEIGHT], rounded to two decimals."""
    return round(min(MAX_WEIGHT, max(0.0, weight)), 2)


def debiased_ema(values: Iterable[float], weight: float = DEFAULT_WEIGHT) -> list[float]:
    """Smooth `values` with TensorBoard's debiased EMA; `weight` 0 returns them unchanged."""
    if not 0.0 <= weight < 1.0:
        raise ValueError(f"smoothing weight must be in [0, 1), got {weight}")
    out: list[float] = []
    last = 0.0
    count = 0
    for value in values:
        value = float(value)
        if not math.isfinite(value):
            out.append(value)
            continue
        last = last * weight + (1.0 - weight) * value
        count += 1
        debias = 1.0 - weight**count if weight > 0 else 1.0
        out.append(last / debias)
    return out
