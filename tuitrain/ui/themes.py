"""Themes as data: each `themes/*.toml` defines Textual colours and chart colours.

A theme file has `name`, `dark`, a `[colors]` table (Textual `Theme` fields) and a
`[chart]` table (`train`, `eval`, `lr`, `marker`, `grid` and a `series` list) whose
values are plotext colours ("r,g,b" strings or plotext colour names).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from textual.theme import Theme

from tuitrain.errors import TuitrainError
from tuitrain.paths import themes_dir

DEFAULT_THEME = "tuitrain-dark"

_COLOR_KEYS = (
    "primary", "secondary", "accent", "foreground", "background",
    "surface", "panel", "success", "warning", "error", "boost",
)


@dataclass(frozen=True)
class ChartColors:
    """Colours charts draw with; plotext colour values (`(r, g, b)` tuples or names)."""

    train: object = "cyan"
    eval: object = "orange"
    lr: object = "magenta"
    marker: object = "red"
    grid: object = "gray"
    series: tuple = field(default=("cyan", "orange", "green", "magenta", "red", "blue"))

    def series_color(self, index: int) -> object:
        """The colour of the index-th overlaid series (cycles)."""
        return self.series[index % len(self.series)]


def _plotext_color(value: object) -> object:
    if isinstance(value, str) and "," in value:
        parts = [p.strip() for p in value.split(",")]
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            return tuple(int(p) for p in parts)
    return value


@dataclass(frozen=True)
class ThemeSpec:
    """One loaded theme file: the Textual theme and its chart colours."""

    theme: Theme
    chart: ChartColors
    path: Path


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
    theme = Theme(
        name=str(data.get("name", path.stem)),
        dark=bool(data.get("dark", True)),
        variables=dict(data.get("variables", {})),
        **{k: v for k, v in colors.items()},
    )
    chart_data = data.get("chart", {})
    defaults = ChartColors()
    chart = ChartColors(
        **{
            key: _plotext_color(chart_data.get(key, getattr(defaults, key)))
            for key in ("train", "eval", "lr", "marker", "grid")
        },
        series=tuple(_plotext_color(c) for c in chart_data.get("series", defaults.series)) or defaults.series,
    )
    return ThemeSpec(theme=theme, chart=chart, path=path)


def load_themes(folder: Path | None = None) -> dict[str, ThemeSpec]:
    """Every theme in `folder` (default: the shipped `themes/`), by theme name."""
    folder = themes_dir() if folder is None else folder
    specs: dict[str, ThemeSpec] = {}
    for path in sorted(folder.glob("*.toml")):
        spec = load_theme_file(path)
        specs[spec.theme.name] = spec
    return specs


_FALLBACK_DARK = ChartColors()
_FALLBACK_LIGHT = ChartColors(
    train="blue", eval="red", lr="magenta", marker="red", grid="gray",
    series=("blue", "red", "green", "magenta", "orange", "cyan"),
)


def chart_colors(app) -> ChartColors:
    """The chart colours of the app's current theme (charts redraw on theme change).

    Works for any Textual app: a tuitrain theme gives its `[chart]` table, any other
    theme a dark or light fallback.
    """
    specs = getattr(app, "theme_specs", None) or {}
    spec = specs.get(app.theme)
    if spec is not None:
        return spec.chart
    theme = app.get_theme(app.theme) if hasattr(app, "get_theme") else None
    return _FALLBACK_LIGHT if theme is not None and not theme.dark else _FALLBACK_DARK
