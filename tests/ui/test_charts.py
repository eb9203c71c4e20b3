"""The chart renderer, cell by cell: every series visible, legend, axes, one point, log, ASCII."""

from __future__ import annotations

import math

import pytest

from tuitrain.runs.series import Series
from tuitrain.ui.widgets.chartdraw import Frame, Trace, draw, format_number, glyph
from tuitrain.ui.widgets.charts import Decimated

STYLES = ("red", "green", "blue")


def _traces(curves, glyphs=True):
    xs = list(range(1, 201))
    return [Trace(f"run-{i}", xs, [f(x) for x in xs], STYLES[i], glyph(i) if glyphs else "")
            for i, f in enumerate(curves)]


def _owners(text) -> dict[str, int]:
    """How many plot cells each style owns (legend line and x axis excluded)."""
    start = text.plain.index("\n") + 1
    end = text.plain.rindex("\n")
    owned: dict[str, int] = {}
    for span in text.spans:
        if span.start >= start and span.end <= end and str(span.style) in STYLES:
            owned[str(span.style)] = owned.get(str(span.style), 0) + span.end - span.start
    return owned


def test_crossing_curves_each_keep_their_colour():
    curves = [lambda x: x, lambda x: 200 - x, lambda x: 100 + 50 * math.sin(x / 15)]
    owned = _owners(draw(_traces(curves, glyphs=False), Frame(y_label="loss"), 80, 20))
    assert set(owned) == set(STYLES) and min(owned.values()) >= 20, owned


def test_identical_curves_stay_visible_through_their_glyphs():
    same = [lambda x: 3 * math.exp(-x / 50)] * 3
    text = draw(_traces(same), Frame(y_label="loss"), 80, 16)
    body = text.plain.split("\n", 1)[1].rsplit("\n", 1)[0]
    for i in range(3):
        assert body.count(glyph(i)) >= 3, body
    columns = [{line.find(glyph(i)) for line in body.splitlines() if glyph(i) in line} for i in range(3)]
    assert not (columns[0] & columns[1] or columns[1] & columns[2]), "glyphs share a column"


@pytest.mark.parametrize("width", [20, 24, 30, 41, 60])
def test_the_legend_never_separates_a_glyph_from_its_name(width):
    text = draw(_traces([lambda x: x] * 3), Frame(title="train loss"), width, 14)
    legend = [line for line in text.plain.splitlines() if "run-" in line]
    for i in range(3):
        assert any(f"{glyph(i)} run-{i}" in line for line in legend), legend


def test_axes_are_named():
    text = draw(_traces([lambda x: x]), Frame(x_label="step", y_label="samples/s"), 60, 10)
    last = text.plain.splitlines()[-1].split()
    assert last == ["↑samples/s", "1", "step", "200"]


def test_a_one_point_chart_shows_its_value():
    text = draw([Trace("eval", [100], [2.23], "red", "●")], Frame(y_label="loss"), 50, 9)
    rows = text.plain.splitlines()[1:-1]
    ticks = [row.split("┤")[0].strip() for row in rows if "┤" in row]
    assert ticks == ["2.23"]
    row = next(r for r in rows if "┤" in r)
    assert "●" in row  # drawn on its tick's row, as a glyph (not a lone braille dot)
    assert text.plain.splitlines()[-1].split() == ["↑loss", "100", "step"]


def test_log_scale_shows_real_values_and_skips_what_it_cannot_draw():
    xs = list(range(1, 101))
    text = draw([Trace("loss", xs, [10 ** (-x / 25) for x in xs] + [], "red")], Frame(log_y=True), 60, 12)
    ticks = [r.split("┤")[0].strip() for r in text.plain.splitlines()[1:-1] if "┤" in r]
    assert ticks[0] == "0.912" and ticks[-1] == "0.0001"
    empty = draw([Trace("loss", [1, 2], [0.0, -1.0], "red")], Frame(log_y=True), 60, 8)
    assert "no positive values for a log scale" in empty.plain


def test_ascii_charts_draw_only_ascii():
    text = draw(_traces([lambda x: x, lambda x: 200 - x], glyphs=False) +
                [Trace("m", [50], [50], "red", glyph(0, ascii_only=True))], Frame(ascii_only=True, y_label="loss"),
                60, 12)
    assert all(ord(ch) < 128 for ch in text.plain), text.plain
    assert "|" in text.plain and "+" in text.plain


def test_number_formats():
    assert [format_number(v) for v in (40600, 1.2e6, 0.003, 3e-5, 2.23, 100)] == \
        ["40.6k", "1.2M", "0.003", "3e-05", "2.23", "100"]


def test_a_step_window_keeps_its_points_finely_decimated():
    series = Series("loss")
    for step in range(1, 10_001):
        series.append(step, float(step))
    window = Decimated(series, 100, x_range=(5000, 6000))
    assert window.xs and min(window.xs) >= 5000 and max(window.xs) <= 6000
    assert len(window.xs) >= 100  # as many points as the whole run would get at this width
