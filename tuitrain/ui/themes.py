"""Themes as data: each `themes/*.toml` defines Textual colours and chart colours.

A theme file has `name`, `dark`, a `[colors]` table (Textual `Theme` fields) and a
`[chart]` table: `train`, `eval`, `lr`, `marker`, `grid` (the raw loss under its smoothed
line), optionally `axis`, and a `series` list for overlaid runs. Chart colours are CSS
colours (`"#5fafff"`, or `"95,175,255"`). They become the theme's `$chart-*` variables, which
`app.tcss` gives to the charts' component classes; a theme without them (any other Textual
theme) gets them from its own primary, accent, … colours (`chart_variables`).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

from tuitrain.errors import TuitrainError
from tuitrain.paths import themes_dir

DEFAULT_THEME = "tuitrain-dark"

_COLOR_KEYS = (
    "primary", "secondary", "accent", "foreground", "background",
    "surface", "panel", "success", "warning", "error", "boost",
)
_CHART_KEYS = ("train", "eval", "lr", "marker", "grid", "axis")
SERIES = 6  # chart-series-1 … chart-series-6
# chart variable -> the theme colour it falls back to
_FALLBACK = {
    "chart-train": "primary", "chart-eval": "accent", "chart-lr": "secondary", "chart-marker": "error",
    **{f"chart-series-{i + 1}": name for i, name in
       enumerate(("primary", "accent", "success", "secondary", "error", "warning"))},
}


@dataclass(frozen=True)
class ThemeSpec:
    """One loaded theme file: the Textual theme (chart colours among its variables)."""

    theme: Theme
    path: Path


def _css_color(path: Path, key: str, value: object) -> str:
    text = str(value).strip()
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        text = "rgb({},{},{})".format(*parts)
    try:
        return Color.parse(text).hex
    except ColorParseError:
        raise TuitrainError(f"{path}: [chart] {key} = {value!r} is not a colour (e.g. \"#5fafff\")") from None


def load_theme_file(path: Path) -> ThemeSpec:
    """Parse one theme file; a malformed file raises `TuitrainError` naming it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TuitrainError(f"{path}: cannot read theme ({exc})") from exc
    colors = data.get("colors", {})
    if "primary" not in colors:
        raise TuitrainError(f"{path}: [colors] needs at least `primary`")
    unknown = set(colors) - set(_COLOR_KEYS)
    if unknown:
        raise TuitrainError(f"{path}: unknown colour keys {sorted(unknown)} (known: {', '.join(_COLOR_KEYS)})")
    chart = data.get("chart", {})
    unknown = set(chart) - set(_CHART_KEYS) - {"series"}
    if unknown:
        raise TuitrainError(f"{path}: unknown [chart] keys {sorted(unknown)} (known: {', '.join(_CHART_KEYS)}, series)")
    variables = {f"chart-{key}": _css_color(path, key, chart[key]) for key in _CHART_KEYS if key in chart}
    series = list(chart.get("series", []))
    for i in range(SERIES if series else 0):
        variables[f"chart-series-{i + 1}"] = _css_color(path, "series", series[i % len(series)])
    theme = Theme(
        name=str(data.get("name", path.stem)),
        dark=bool(data.get("dark", True)),
        variables={**dict(data.get("variables", {})), **variables},
        **{k: v for k, v in colors.items()},
    )
    return ThemeSpec(theme=theme, path=path)


def load_themes(folder: Path | None = None) -> dict[str, ThemeSpec]:
    """Every theme in `folder` (default: the shipped `themes/`), by theme name."""
    folder = themes_dir() if folder is None else folder
    specs: dict[str, ThemeSpec] = {}
    for path in sorted(folder.glob("*.toml")):
        spec = load_theme_file(path)
        specs[spec.theme.name] = spec
    return specs


def chart_variables(variables: dict[str, str]) -> dict[str, str]:
    """The `$chart-*` variables a theme leaves out, from its other colours (`variables` is
    what `App.get_css_variables` computed for it)."""
    out = {name: variables.get(source, "") for name, source in _FALLBACK.items()}
    try:
        background = Color.parse(variables["background"])
        foreground = Color.parse(variables["foreground"])
        out["chart-grid"] = background.blend(foreground, 0.3).hex
        out["chart-axis"] = background.blend(foreground, 0.6).hex
    except (KeyError, ColorParseError):
        out["chart-grid"] = out["chart-axis"] = "grey"
    return {k: v for k, v in out.items() if v and k not in variables}
