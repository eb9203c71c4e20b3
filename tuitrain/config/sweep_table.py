"""A sweep's axes as text: dotted keys, value lists, random distributions, and a preset's `[sweep]` table.

One reader for the command line (`tuitrain sweep --grid …`), the preset's `[sweep]` table (checked by
the preset loader like any table, so the editor flags a bad one at its line) and the app's sweep
dialog. Stdlib only: the preset loader runs where only torch is installed.

```toml
[sweep]
parallel = 2                  # members at once, or "per-gpu"
count = 4                     # draws of the [sweep.sample] distributions
seed = 0                      # the draws' seed (recorded, so a sweep is reproducible)
[sweep.grid]                  # the cartesian product of these
"optimizer.lr_scheduler_type" = ["linear", "cosine"]
[sweep.zip]                   # varied together (equal lengths), combined with every grid point
"core.per_device_train_batch_size" = [8, 16]
"core.gradient_accumulation_steps" = [2, 1]
[sweep.sample]                # drawn `count` times
"optimizer.learning_rate" = "loguniform(1e-4, 1e-2)"
```
"""

from __future__ import annotations

import math
import random
import re
import tomllib
from dataclasses import dataclass
from typing import Any, Callable

from tuitrain.config import schema
from tuitrain.config.values import BadValue, check_value, closest, describe

# The distributions `--sample` and `[sweep.sample]` accept, and how many arguments each takes.
DISTRIBUTIONS = {"loguniform": 2, "uniform": 2, "intuniform": 2, "choice": None}
TABLE_KEYS = ("parallel", "count", "seed", "grid", "zip", "sample")
PER_GPU = "per-gpu"
# Drawn floats keep this many significant digits: readable member names, and the value a
# member's preset records is exactly the one it trained with.
DRAW_DIGITS = 4
MAX_MEMBERS = 1000


class SweepSyntaxError(ValueError):
    """One thing wrong with an axis: `message`, `suggestion`."""

    def __init__(self, message: str, suggestion: str = "") -> None:
        super().__init__(message)
        self.message, self.suggestion = message, suggestion


def canonical_key(name: str) -> str:
    """`group.key` of a setting named `group.key`, `key` or an alias; `task.options.X` and
    `launch.env.X` as they are. `SweepSyntaxError` (with "did you mean") for an unknown one."""
    name = name.strip()
    for prefix in ("task.options.", "launch.env."):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name
    key = name.rpartition(".")[2]
    try:
        f = schema.field(name) if name in schema.FIELDS else schema.field(key)
    except KeyError:
        near = closest(key, schema.all_keys())
        raise SweepSyntaxError(f"unknown setting {name!r}",
                               f"did you mean {schema.field(near).name!r}?" if near else
                               "use GROUP.KEY, e.g. optimizer.learning_rate") from None
    group = name.rpartition(".")[0]
    if group and group != f.group:
        raise SweepSyntaxError(f"{key!r} belongs in [{f.group}], not [{group}]", f"write {f.name}")
    return f.name


def field_of(key: str) -> schema.Field | None:
    """The schema field a canonical key sets (None for task options and launch env)."""
    return schema.FIELDS.get(key)


def check_member_value(key: str, value: Any) -> Any:
    """`value` checked (and normalised) for the setting `key`; `SweepSyntaxError` when wrong."""
    f = field_of(key)
    if f is None:
        return value
    try:
        return check_value(f, value)
    except BadValue as bad:
        raise SweepSyntaxError(f"{key} = {describe(value)}: {bad.message}", bad.suggestion) from None


def parse_value(raw: str) -> Any:
    """A TOML value (`0.1`, `"cosine"`, `[1, 2]`); a bare word is a string."""
    raw = raw.strip()
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def split_top(text: str) -> list[str]:
    """`text` split at the commas outside brackets, braces, parentheses and quotes."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def split_axis(text: str, option: str) -> tuple[str, str]:
    """`KEY=REST` of a `--grid`/`--zip`/`--sample`/`--set` argument → (canonical key, REST)."""
    if "=" not in text:
        raise SweepSyntaxError(f"{option} {text}: expected GROUP.KEY=VALUES",
                               "e.g. --grid optimizer.lr_scheduler_type=linear,cosine")
    name, _, rest = text.partition("=")
    if not rest.strip():
        raise SweepSyntaxError(f"{option} {text}: no values after '='")
    return canonical_key(name), rest


def parse_values(text: str) -> list[Any]:
    """`V1,V2,…` → the values (each a TOML value, bare words strings)."""
    values = [parse_value(p) for p in split_top(text)]
    if any(v == "" for v in values):
        raise SweepSyntaxError(f"{text!r}: an empty value", "separate values with single commas")
    return values


@dataclass(frozen=True)
class Sample:
    """A distribution values are drawn from: `kind` (a DISTRIBUTIONS key) and its `args`."""

    kind: str
    args: tuple

    @property
    def text(self) -> str:
        """As written: `loguniform(0.0001, 0.01)`."""
        from tuitrain.config.writer import toml_value

        return f"{self.kind}(" + ", ".join(toml_value(a) for a in self.args) + ")"

    def draw(self, rng: random.Random) -> Any:
        """One value drawn with `rng` (floats rounded to DRAW_DIGITS significant digits)."""
        if self.kind == "choice":
            return rng.choice(self.args)
        lo, hi = self.args
        if self.kind == "intuniform":
            return rng.randint(int(lo), int(hi))
        if self.kind == "loguniform":
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            value = rng.uniform(lo, hi)
        return float(f"{value:.{DRAW_DIGITS}g}")


_CALL = re.compile(r"^\s*([a-z_]+)\s*\((.*)\)\s*$", re.S)


def parse_sample(text: str) -> Sample:
    """`loguniform(a,b)`, `uniform(a,b)`, `intuniform(a,b)` or `choice(v1,v2,…)` → `Sample`."""
    match = _CALL.match(text)
    if not match or match[1] not in DISTRIBUTIONS:
        word = match[1] if match else text.strip()
        near = closest(word, list(DISTRIBUTIONS))
        raise SweepSyntaxError(f"unknown distribution {text.strip()!r}",
                               f"did you mean {near}(…)?" if near else
                               "use loguniform(a,b), uniform(a,b), intuniform(a,b) or choice(v1,v2,…)")
    kind = match[1]
    args = tuple(parse_values(match[2])) if match[2].strip() else ()
    if kind == "choice":
        if not args:
            raise SweepSyntaxError("choice() needs at least one value", "e.g. choice(linear, cosine)")
        return Sample(kind, args)
    if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise SweepSyntaxError(f"{kind} takes two numbers, got {text.strip()!r}", f"e.g. {kind}(1, 10)")
    lo, hi = args
    if not lo < hi:
        raise SweepSyntaxError(f"{kind}({lo}, {hi}): the low end must be below the high end")
    if kind == "loguniform" and lo <= 0:
        raise SweepSyntaxError(f"loguniform({lo}, {hi}): both ends must be positive", "e.g. loguniform(1e-5, 1e-2)")
    if kind == "intuniform" and not all(isinstance(a, int) for a in args):
        raise SweepSyntaxError(f"intuniform({lo}, {hi}): give whole numbers")
    return Sample(kind, args)


def parse_parallel(value: Any) -> int | str:
    """`parallel`: a whole number ≥ 1 or "per-gpu"."""
    if value == PER_GPU:
        return PER_GPU
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SweepSyntaxError(f"expected a whole number >= 1 or \"per-gpu\", got {describe(value)}")
    return value


def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SweepSyntaxError(f"expected a whole number >= {minimum}, got {describe(value)}")
    return value


Report = Callable[[tuple, str, str, str], None]  # (key path, message, suggestion, shown name)


def read_sweep_table(table: Any, report: Report) -> dict[str, Any]:
    """A preset's `[sweep]` table checked: `{"grid", "zip", "sample", "parallel", "count",
    "seed"}` (axes keyed by canonical dotted keys). Each problem goes to `report` with the
    table path it is at (for its line); what is wrong is left out of the result."""
    out: dict[str, Any] = {"grid": {}, "zip": {}, "sample": {}, "parallel": None, "count": None, "seed": None}
    if not isinstance(table, dict):
        report(("sweep",), f"expected a [sweep] table, got {describe(table)}", "write [sweep] on its own line", "sweep")
        return out
    for key, value in table.items():
        path = ("sweep", key)
        try:
            if key not in TABLE_KEYS:
                near = closest(key, list(TABLE_KEYS))
                raise SweepSyntaxError("unknown key in [sweep]", f"did you mean {near!r}?" if near else
                                       "keys: " + ", ".join(TABLE_KEYS))
            if key == "parallel":
                out[key] = parse_parallel(value)
            elif key in ("count", "seed"):
                out[key] = _whole(value, 1 if key == "count" else 0)
            else:
                _read_axes(key, value, out[key], report)
        except SweepSyntaxError as bad:
            report(path, bad.message, bad.suggestion, f"sweep.{key}")
    lengths = {len(v) for v in out["zip"].values()}
    if len(lengths) > 1:
        shown = ", ".join(f"{k} has {len(v)}" for k, v in out["zip"].items())
        report(("sweep", "zip"), f"zipped keys need equal lengths ({shown})", "give each the same number of values",
               "sweep.zip")
    return out


def _read_axes(kind: str, value: Any, into: dict[str, Any], report: Report) -> None:
    if not isinstance(value, dict):
        raise SweepSyntaxError(f"expected a [sweep.{kind}] table, got {describe(value)}",
                               f'e.g. [sweep.{kind}] then "optimizer.learning_rate" = …')
    for name, values in value.items():
        path, shown = ("sweep", kind, name), f'sweep.{kind}."{name}"'
        try:
            key = canonical_key(name)
            if key in into:
                raise SweepSyntaxError(f"{key} is given twice")
            if kind == "sample":
                if not isinstance(values, str):
                    raise SweepSyntaxError(f"expected a distribution as a string, got {describe(values)}",
                                           'e.g. "loguniform(1e-4, 1e-2)"')
                sample = parse_sample(values)
                if sample.kind == "choice":
                    for v in sample.args:
                        check_member_value(key, v)
                into[key] = sample
            else:
                if not isinstance(values, list) or not values:
                    raise SweepSyntaxError(f"expected a list of values, got {describe(values)}",
                                           'e.g. ["linear", "cosine"]')
                into[key] = [check_member_value(key, v) for v in values]
        except SweepSyntaxError as bad:
            report(path, bad.message, bad.suggestion, shown)
