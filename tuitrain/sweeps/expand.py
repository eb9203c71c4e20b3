"""A sweep's members: the grid's cartesian product × the zipped rows × the sampled draws,
each a preset checked exactly as `tuitrain run` would check it, before any member starts.

A member's name is its varied values, `key=value` joined by `,` (the key's last dotted part,
or the full key where two varied keys share it): `lr_scheduler_type=cosine`.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tuitrain.config import load_preset
from tuitrain.config.problems import PresetErrors
from tuitrain.config.sweep_table import MAX_MEMBERS
from tuitrain.config.writer import toml_value
from tuitrain.errors import TuitrainError
from tuitrain.sweeps.spec import SweepSpec

__all__ = ["Member", "expand", "member_values", "member_name", "draw_seed"]

# The longest member directory name (a run name, less room for `-N`).
MAX_MEMBER_NAME = 96
_UNSAFE = re.compile(r"[^\w.+@=,-]")


@dataclass(frozen=True)
class Member:
    """One member of a sweep: its directory name, its varied values (dotted key → value)
    and its checked `Preset` (the base preset with `sets` and these values applied)."""

    name: str
    values: dict[str, Any]
    preset: Any


def draw_seed() -> int:
    """A fresh seed for a sweep given none (recorded in sweep.json, so it can be drawn again)."""
    return random.SystemRandom().randrange(2**31)


def member_values(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every member's varied values, in order: grid points (last key fastest), each with every
    zipped row, each with every draw of the samples."""
    if spec.sample and spec.count is None:
        raise TuitrainError("--sample draws --count values: give --count N (or count in [sweep])")
    if spec.count is not None and not spec.sample:
        raise TuitrainError("--count N draws the --sample distributions, and none is given "
                            "(add --sample GROUP.KEY=loguniform(a,b), or leave --count out)")
    grid = [dict(zip(spec.grid, point)) for point in itertools.product(*spec.grid.values())]
    rows = [dict(zip(spec.zip, row)) for row in zip(*spec.zip.values())] if spec.zip else [{}]
    draws: list[dict[str, Any]] = [{}]
    if spec.sample:
        rng = random.Random(spec.seed)
        draws = [{key: s.draw(rng) for key, s in spec.sample.items()} for _ in range(spec.count or 0)]
    total = len(grid) * len(rows) * len(draws)
    if total > MAX_MEMBERS:
        raise TuitrainError(f"this sweep has {total} members (at most {MAX_MEMBERS}); vary fewer values")
    return [{**g, **r, **d} for g in grid for r in rows for d in draws]


def _short_keys(keys: list[str]) -> dict[str, str]:
    last = [k.rpartition(".")[2] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last)}


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return toml_value(value)


def member_name(values: dict[str, Any], short: dict[str, str] | None = None) -> str:
    """`lr_scheduler_type=cosine,warmup_ratio=0.1` (unsafe characters replaced by `_`)."""
    short = short or _short_keys(list(values))
    name = ",".join(f"{short[k]}={_shown(v)}" for k, v in values.items()) or "base"
    name = _UNSAFE.sub("_", name)
    if not re.match(r"^\w", name):
        name = "m" + name
    return name[:MAX_MEMBER_NAME]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        n = seen.get(name, 0) + 1
        seen[name] = n
        out.append(name if n == 1 else f"{name}-{n}")
    return out


def override_text(key: str, value: Any) -> str:
    """`key=value` as `load_preset`'s overrides take it (the value written as TOML)."""
    return f"{key}={toml_value(value)}"


def expand(preset_path: str | Path, spec: SweepSpec) -> list[Member]:
    """Every member of the sweep, each preset checked; a bad member refuses the whole sweep
    with `TuitrainError` `member NAME: FILE:LINE: field: …` (the first bad member's first
    problem)."""
    values = member_values(spec)
    short = _short_keys(spec.varied())
    names = _unique([member_name(v, short) for v in values])
    sets = [override_text(k, v) for k, v in spec.sets.items()]
    members = []
    for name, vals in zip(names, values):
        overrides = sets + [override_text(k, v) for k, v in vals.items()]
        try:
            preset = load_preset(Path(preset_path), overrides)
        except PresetErrors as exc:
            first = exc.problems[0] if exc.problems else exc
            raise TuitrainError(f"sweep member {name}: {first}" + (
                f" (and {len(exc.problems) - 1} more problems)" if len(exc.problems) > 1 else "")) from None
        members.append(Member(name, vals, preset))
    return members
