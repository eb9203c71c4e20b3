"""`SweepSpec`: what a sweep varies, from the command line, a preset's `[sweep]` table, or both.

Keys are canonical dotted names (`optimizer.lr_scheduler_type`, `task.options.n_layer`);
`config.sweep_table` reads and checks them, so the command line, the preset loader and the
app's sweep dialog agree on every word.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Iterable

from tuitrain.config.problems import PresetErrors, Problem
from tuitrain.config.sweep_table import (
    Sample, SweepSyntaxError, check_member_value, parse_parallel, parse_sample, parse_value, parse_values,
    read_sweep_table, split_axis,
)
from tuitrain.errors import TuitrainError

__all__ = ["SweepSpec", "SweepSpecError", "Sample", "parse_cli", "from_table", "combine"]


class SweepSpecError(TuitrainError):
    """A sweep's axes that cannot be used (told in one line)."""


@dataclass(frozen=True)
class SweepSpec:
    """A sweep's axes and queue settings.

    `grid`: key → values (the cartesian product of every key); `zip`: key → values, varied
    together (equal lengths), each row combined with every grid point; `sample`: key →
    `Sample`, drawn `count` times with `seed`, each draw combined with every grid × zip point;
    `sets`: key → one value for every member; `parallel`: members at once (int, "per-gpu",
    None = 1).
    """

    grid: dict[str, list[Any]] = field(default_factory=dict)
    zip: dict[str, list[Any]] = field(default_factory=dict)
    sample: dict[str, Sample] = field(default_factory=dict)
    sets: dict[str, Any] = field(default_factory=dict)
    count: int | None = None
    seed: int | None = None
    parallel: int | str | None = None

    def varied(self) -> list[str]:
        """Every key the members differ in, in the order of their names."""
        return [*self.grid, *self.zip, *self.sample]

    def is_empty(self) -> bool:
        """Whether nothing is varied (a sweep of one member)."""
        return not (self.grid or self.zip or self.sample)

    def axes_record(self) -> dict[str, Any]:
        """The axes as `sweep.json` records them (samples as their text)."""
        return {"grid": dict(self.grid), "zip": dict(self.zip),
                "sample": {k: s.text for k, s in self.sample.items()}, "set": dict(self.sets)}


def _fail(bad: SweepSyntaxError, where: str = "") -> SweepSpecError:
    tail = f" ({bad.suggestion})" if bad.suggestion else ""
    return SweepSpecError(f"{where}{bad.message}{tail}")


def _add_axis(into: dict[str, Any], text: str, option: str, taken: dict[str, str]) -> None:
    try:
        key, rest = split_axis(text, option)
        if key in taken:
            raise SweepSyntaxError(f"{key} is varied twice ({taken[key]} and {option})",
                                   "give each key once")
        if option == "--sample":
            value: Any = parse_sample(rest)
            if value.kind == "choice":
                for v in value.args:
                    check_member_value(key, v)
        elif option == "--set":
            value = check_member_value(key, parse_value(rest))
        else:
            value = [check_member_value(key, v) for v in parse_values(rest)]
    except SweepSyntaxError as bad:
        raise _fail(bad, f"{option} {text}: " if not bad.message.startswith(option) else "") from None
    taken[key] = option
    into[key] = value


def parse_cli(grid: Iterable[str] = (), zip: Iterable[str] = (), sample: Iterable[str] = (),  # noqa: A002
              sets: Iterable[str] = (), count: int | None = None, seed: int | None = None,
              parallel: Any = None) -> SweepSpec:
    """A `SweepSpec` from the command line's `--grid`, `--zip`, `--sample`, `--set` (each
    `GROUP.KEY=…`), `--count`, `--sweep-seed` and `--parallel`; `SweepSpecError` for a bad one."""
    taken: dict[str, str] = {}
    axes: dict[str, dict[str, Any]] = {"--grid": {}, "--zip": {}, "--sample": {}, "--set": {}}
    for option, texts in (("--grid", grid), ("--zip", zip), ("--sample", sample), ("--set", sets)):
        for text in texts:
            _add_axis(axes[option], text, option, taken if option != "--set" else {})
    try:
        par = parse_parallel(parallel) if parallel is not None else None
    except SweepSyntaxError as bad:
        raise _fail(bad, f"--parallel {parallel}: ") from None
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SweepSpecError(f"--count {count}: expected a whole number >= 1")
    spec = SweepSpec(axes["--grid"], axes["--zip"], axes["--sample"], axes["--set"], count, seed, par)
    _check_zip(spec.zip, "--zip")
    return spec


def _check_zip(zipped: dict[str, list[Any]], where: str) -> None:
    if len({len(v) for v in zipped.values()}) > 1:
        shown = ", ".join(f"{k} has {len(v)}" for k, v in zipped.items())
        raise SweepSpecError(f"{where}: zipped keys need equal lengths ({shown})")


def from_table(table: dict, source: str, text: str = "") -> SweepSpec:
    """A `SweepSpec` from a preset's `[sweep]` table (raw, as `tomllib` gives it, or as
    `Preset.sweep` holds it checked); `PresetErrors` (`FILE:LINE: sweep.…: …`) for a bad one.
    `text` (the preset's TOML) gives the errors their lines."""
    if isinstance(table, dict) and "sample" in table and isinstance(table["sample"], dict):
        # a checked table holds Sample objects: write them back as the text they came from
        table = {**table, "sample": {k: v.text if isinstance(v, Sample) else v for k, v in table["sample"].items()}}
    from tuitrain.config.locate import LineIndex

    index = LineIndex(text)
    problems: list[Problem] = []

    def report(path: tuple, message: str, suggestion: str, name: str) -> None:
        problems.append(Problem(source, index.line(*path), name, message, suggestion))

    checked = read_sweep_table({k: v for k, v in table.items() if v is not None}, report)
    if problems:
        raise PresetErrors(problems[:1])
    return SweepSpec(checked["grid"], checked["zip"], checked["sample"], {}, checked["count"], checked["seed"],
                     checked["parallel"])


def combine(preset_spec: SweepSpec | None, cli_spec: SweepSpec) -> SweepSpec:
    """The preset's sweep with the command line's added: more axes, and the command line's
    `count`, `seed`, `parallel` where given. A key varied in both is refused."""
    if preset_spec is None:
        return cli_spec
    ours = set(preset_spec.varied())
    for key in cli_spec.varied():
        if key in ours:
            raise SweepSpecError(f"{key} is varied by the preset's [sweep] table and by the command line "
                                 "(give it in one place)")
    zipped = {**preset_spec.zip, **cli_spec.zip}
    _check_zip(zipped, "[sweep.zip] with --zip")
    return replace(
        preset_spec,
        grid={**preset_spec.grid, **cli_spec.grid}, zip=zipped, sample={**preset_spec.sample, **cli_spec.sample},
        sets={**preset_spec.sets, **cli_spec.sets},
        count=cli_spec.count if cli_spec.count is not None else preset_spec.count,
        seed=cli_spec.seed if cli_spec.seed is not None else preset_spec.seed,
        parallel=cli_spec.parallel if cli_spec.parallel is not None else preset_spec.parallel,
    )
