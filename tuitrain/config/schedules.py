"""Learning-rate schedules as pure-Python multipliers, matching transformers' `get_scheduler`.

HF's convention: the scheduler's λ is evaluated at the number of updates done so
far, so optimizer update k (1-based) runs at `base_lr × λ(k − 1)`. The formulas
below are transformers 5's (`transformers/optimization.py`), including where they
differ from the usual summary: `constant` ignores warmup, `polynomial` decays to
`lr_end` (default 1e-7) relative to the base LR, `cosine_with_restarts` defaults
to one cycle. `reduce_lr_on_plateau` and `greedy` react to evaluation metrics, so
their preview is a flat 1.0.

The engine wraps `make_lambda(...)` in torch's `LambdaLR`; the UI draws `lr_curve`.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from tuitrain.errors import TuitrainError

# Scheduler name -> {kwarg: default}; a default of `_REQUIRED` must be given.
_REQUIRED = object()
_PLATEAU_KWARGS = {
    "mode": "min", "factor": 0.1, "patience": 10, "threshold": 1e-4,
    "threshold_mode": "rel", "cooldown": 0, "min_lr": 0, "eps": 1e-8,
}
_GREEDY_KWARGS = {
    "mode": "min", "factor": 0.95, "patience": 10, "threshold": 1e-6, "threshold_mode": "abs",
    "cooldown": 0, "warmup": 0, "min_lr": 1e-3, "max_lr": 1.0, "eps": 1e-8, "verbose": False,
    "smooth": False, "window_size": 50, "reset_start": 500,
}
SCHEDULER_KWARGS: dict[str, dict[str, Any]] = {
    "linear": {},
    "cosine": {"num_cycles": 0.5},
    "cosine_with_restarts": {"num_cycles": 1},
    "polynomial": {"lr_end": 1e-7, "power": 1.0},
    "constant": {},
    "constant_with_warmup": {},
    "inverse_sqrt": {"timescale": None},
    "reduce_lr_on_plateau": _PLATEAU_KWARGS,
    "cosine_with_min_lr": {"num_cycles": 0.5, "min_lr": None, "min_lr_rate": None},
    "cosine_warmup_with_min_lr": {
        "num_cycles": 0.5, "min_lr": None, "min_lr_rate": None, "warmup_lr_rate": None,
    },
    "warmup_stable_decay": {
        "num_decay_steps": _REQUIRED, "num_stable_steps": None, "warmup_type": "linear",
        "decay_type": "cosine", "min_lr_ratio": 0.0, "num_cycles": 0.5,
    },
    "greedy": _GREEDY_KWARGS,
}
SCHEDULERS = tuple(SCHEDULER_KWARGS)
# Schedulers whose LR follows evaluation metrics: no curve can be known in advance.
METRIC_DRIVEN = ("reduce_lr_on_plateau", "greedy")
_WSD_SHAPES = ("linear", "cosine", "1-sqrt")


def kwargs_help() -> str:
    """The `lr_scheduler_kwargs` each scheduler accepts, for the field's help."""
    parts = [f"{name}: {', '.join(kw)}" for name, kw in SCHEDULER_KWARGS.items() if kw]
    return "Accepted keys per scheduler: " + "; ".join(parts) + "."


def resolve_kwargs(name: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """`kwargs` over the scheduler's defaults; unknown or missing keys raise `TuitrainError`."""
    return _resolve_kwargs(name, kwargs)


def _resolve_kwargs(name: str, kwargs: dict[str, Any] | None) -> dict[str, Any]:
    if name not in SCHEDULER_KWARGS:
        raise TuitrainError(
            f"lr_scheduler_type: unknown scheduler {name!r} (choose one of {', '.join(SCHEDULERS)})"
        )
    accepted = SCHEDULER_KWARGS[name]
    given = dict(kwargs or {})
    if name == "constant":
        return {}  # transformers passes no kwargs to the constant schedule
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        allowed = ", ".join(accepted) or "none"
        raise TuitrainError(
            f"lr_scheduler_kwargs: {', '.join(unknown)} not accepted by {name} (accepted: {allowed})"
        )
    resolved = {**accepted, **given}
    missing = [key for key, value in resolved.items() if value is _REQUIRED]
    if missing:
        raise TuitrainError(f"lr_scheduler_kwargs: {name} needs {', '.join(missing)}")
    return resolved


def _min_lr_rate(name: str, kw: dict[str, Any], base_lr: float | None) -> float:
    min_lr, rate = kw["min_lr"], kw["min_lr_rate"]
    if (min_lr is None) == (rate is None):
        raise TuitrainError(
            f"lr_scheduler_kwargs: {name} needs exactly one of min_lr or min_lr_rate"
        )
    if rate is not None:
        return float(rate)
    if not base_lr:
        raise TuitrainError(f"lr_scheduler_kwargs: {name} with min_lr needs a learning_rate > 0")
    return float(min_lr) / float(base_lr)


def _warmup(step: int, warmup: int) -> float:
    return float(step) / float(max(1, warmup))


def make_lambda(
    name: str,
    warmup_steps: int,
    total_steps: int,
    kwargs: dict[str, Any] | None = None,
    base_lr: float | None = None,
) -> Callable[[int], float]:
    """λ(step) for `name`, validated once; `step` is the number of updates done so far.

    `base_lr` is needed by `polynomial` (its `lr_end` is absolute) and by
    `cosine_with_min_lr` / `cosine_warmup_with_min_lr` given `min_lr`.
    Bad kwargs raise `TuitrainError`.
    """
    kw = _resolve_kwargs(name, kwargs)
    w, t = int(warmup_steps), int(total_steps)

    if name == "constant" or name in METRIC_DRIVEN:
        return lambda step: 1.0

    if name == "constant_with_warmup":
        return lambda step: _warmup(step, w) if step < w else 1.0

    if name == "linear":
        span = float(max(1, t - w))
        return lambda step: _warmup(step, w) if step < w else max(0.0, float(t - step) / span)

    if name in ("cosine", "cosine_with_min_lr"):
        cycles = float(kw["num_cycles"])
        rate = _min_lr_rate(name, kw, base_lr) if name == "cosine_with_min_lr" else 0.0
        span = float(max(1, t - w))

        def cosine(step: int) -> float:
            if step < w:
                return _warmup(step, w)
            progress = float(step - w) / span
            factor = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress))
            return max(0.0, factor * (1 - rate) + rate)

        return cosine

    if name == "cosine_with_restarts":
        cycles = float(kw["num_cycles"])
        span = float(max(1, t - w))

        def restarts(step: int) -> float:
            if step < w:
                return _warmup(step, w)
            progress = float(step - w) / span
            if progress >= 1.0:
                return 0.0
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))

        return restarts

    if name == "polynomial":
        if base_lr is None:
            raise TuitrainError("polynomial schedule needs the learning_rate (its lr_end is absolute)")
        lr_init, lr_end, power = float(base_lr), float(kw["lr_end"]), float(kw["power"])
        if not lr_init > lr_end:
            raise TuitrainError(
                f"lr_scheduler_kwargs: polynomial lr_end ({lr_end:g}) must be smaller than "
                f"learning_rate ({lr_init:g})"
            )
        decay_steps = t - w

        def polynomial(step: int) -> float:
            if step < w:
                return _warmup(step, w)
            if step > t:
                return lr_end / lr_init
            pct_remaining = 1 - (step - w) / decay_steps
            return ((lr_init - lr_end) * pct_remaining**power + lr_end) / lr_init

        if decay_steps <= 0:
            raise TuitrainError(
                f"polynomial schedule: warmup ({w}) must be shorter than the run ({t} steps)"
            )
        return polynomial

    if name == "inverse_sqrt":
        timescale = kw["timescale"]
        if timescale is None:
            timescale = w or 10_000
        if timescale <= 0:
            raise TuitrainError(f"lr_scheduler_kwargs: inverse_sqrt timescale must be > 0, got {timescale}")
        shift = timescale - w
        return lambda step: _warmup(step, w) if step < w else 1.0 / math.sqrt((step + shift) / timescale)

    if name == "cosine_warmup_with_min_lr":
        cycles = float(kw["num_cycles"])
        rate = _min_lr_rate(name, kw, base_lr)
        warmup_rate = kw["warmup_lr_rate"]
        fw, ft = float(w), float(t)

        def cosine_warmup(step: int) -> float:
            s = float(step)
            if s < fw:
                if warmup_rate is None:
                    return (s + 1.0) / max(1.0, fw)
                return warmup_rate + (1.0 - warmup_rate) * s / max(1, fw - 1)
            progress = (s - fw + 1.0) / max(1.0, ft - fw)
            factor = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress))
            return max(0, factor * (1 - rate) + rate)

        return cosine_warmup

    # warmup_stable_decay
    return _wsd(kw, w, t)


def _wsd(kw: dict[str, Any], w: int, t: int) -> Callable[[int], float]:
    warmup_type, decay_type = kw["warmup_type"], kw["decay_type"]
    for key, value in (("warmup_type", warmup_type), ("decay_type", decay_type)):
        if value not in _WSD_SHAPES:
            raise TuitrainError(
                f"lr_scheduler_kwargs: warmup_stable_decay {key} {value!r} is not one of "
                f"{', '.join(_WSD_SHAPES)}"
            )
    decay = int(kw["num_decay_steps"])
    stable = kw["num_stable_steps"]
    stable = t - w - decay if stable is None else int(stable)
    if stable < 0:
        raise TuitrainError(
            f"lr_scheduler_kwargs: warmup_stable_decay warmup ({w}) + num_decay_steps ({decay}) "
            f"exceed the run ({t} steps)"
        )
    min_ratio, cycles = float(kw["min_lr_ratio"]), float(kw["num_cycles"])

    def wsd(step: int) -> float:
        if step < w:
            progress = float(step) / float(max(1, w))
            if warmup_type == "linear":
                factor = progress
            elif warmup_type == "cosine":
                factor = 0.5 * (1.0 - math.cos(math.pi * progress))
            else:
                factor = 1.0 - math.sqrt(1.0 - progress)
            return max(0.0, factor * (1.0 - min_ratio) + min_ratio)
        if step < w + stable:
            return 1.0
        if step < w + stable + decay:
            progress = float(step - w - stable) / float(max(1, decay))
            if decay_type == "linear":
                factor = 1.0 - progress
            elif decay_type == "cosine":
                factor = 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress))
            else:
                factor = 1.0 - math.sqrt(progress)
            return max(0.0, factor * (1.0 - min_ratio) + min_ratio)
        return min_ratio

    return wsd


def lr_multiplier(
    name: str,
    step: int,
    *,
    warmup_steps: int,
    total_steps: int,
    base_lr: float | None = None,
    **kwargs: Any,
) -> float:
    """HF's λ(step) for one step; `kwargs` are the scheduler's `lr_scheduler_kwargs`."""
    return float(make_lambda(name, warmup_steps, total_steps, kwargs, base_lr)(step))


def lr_curve(
    args: Any, total_steps: int, warmup_steps: int, points: int | None = None
) -> list[float]:
    """Absolute learning rates of updates 1..total_steps (`base_lr × λ(k − 1)`).

    With `points`, at most that many evenly spaced updates are evaluated (for a
    chart `points` columns wide); `curve_steps(total_steps, points)` gives their
    1-based update numbers.
    """
    base_lr = float(args.learning_rate)
    name = args.lr_scheduler_type
    kwargs = args.lr_scheduler_kwargs or {}
    fn = make_lambda(name, warmup_steps, total_steps, kwargs, base_lr)
    if points is None or points >= total_steps:
        fast = _full_curve(name, _resolve_kwargs(name, kwargs), int(warmup_steps), int(total_steps), base_lr)
        if fast is not None:
            return fast
    return [base_lr * fn(k - 1) for k in curve_steps(total_steps, points)]


def _full_curve(name: str, kw: dict[str, Any], w: int, t: int, base_lr: float) -> list[float] | None:
    """Every update's LR without a call per step, for the common schedules (same arithmetic
    as `make_lambda`, so the values are identical); None for the others."""
    if t <= 0:
        return []
    if name == "constant" or name in METRIC_DRIVEN:
        return [base_lr * 1.0] * t
    wmax = float(max(1, w))
    head = [base_lr * (float(s) / wmax) for s in range(min(w, t))]
    tail = range(w, t)
    if name == "constant_with_warmup":
        return head + [base_lr * 1.0] * len(tail)
    span = float(max(1, t - w))
    if name == "linear":
        return head + [base_lr * max(0.0, float(t - s) / span) for s in tail]
    if name in ("cosine", "cosine_with_min_lr"):
        k = math.pi * float(kw["num_cycles"]) * 2.0
        rate = _min_lr_rate(name, kw, base_lr) if name == "cosine_with_min_lr" else 0.0
        cos, keep = math.cos, 1 - rate
        return head + [
            base_lr * max(0.0, 0.5 * (1.0 + cos(k * (float(s - w) / span))) * keep + rate) for s in tail
        ]
    return None


def curve_steps(total_steps: int, points: int | None = None) -> list[int]:
    """The 1-based update numbers `lr_curve` evaluates: all, or `points` spread evenly."""
    total = max(int(total_steps), 0)
    if points is None or points >= total:
        return list(range(1, total + 1))
    if points < 2:
        return [1] if points == 1 else []
    span = (total - 1) / (points - 1)
    return [1 + round(i * span) for i in range(points)]
