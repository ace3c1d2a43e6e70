"""The braille canvas under the charts (headless): value labels, scales, lines, the overlay's rows."""

from __future__ import annotations

import itertools

from screens.widgets.braille import RULE_GLYPH, Canvas, Scale, format_value, line_dots
from screens.widgets.line_chart import Series, series_rows


def test_format_value_keeps_three_digits_whole_numbers_and_scientific_outside() -> None:
    assert [format_value(v) for v in (0, 2.3456, 0.0123, 123.4, 4321.0, 12_345.0, 0.001)] == \
        ["0", "2.35", "0.0123", "123", "4321", "1.2e+04", "1.0e-03"]


def test_scales_fit_the_plottable_values_and_map_them_to_dots() -> None:
    assert Scale.fit([0.0, -1.0, float("nan")], log=True) is None
    log = Scale.fit([0.0, 10.0, 1000.0], log=True)
    assert log == Scale(1.0, 3.0, log=True)
    assert not log.plottable(0.0)
    assert Scale.fit([2.0, 2.0]) == Scale(1.5, 2.5)  # a flat series gets a range
    padded = Scale.fit([0.0, 10.0], pad=0.05)
    assert padded is not None and (padded.lo, padded.hi) == (-0.5, 10.5)
    linear = Scale(0, 10)
    assert [linear.dot(v, 11) for v in (0, 5, 10, 99)] == [0, 5, 10, 10]
    assert linear.dot(10, 11, downward=True) == 0  # the highest value on the top row
    assert log.labels(5) == {0: "1000", 2: "100", 4: "10"}


def test_line_dots_join_their_ends_one_dot_per_step() -> None:
    dots = line_dots(0, 0, 6, 3)
    assert dots[0] == (0, 0) and dots[-1] == (6, 3) and len(dots) == 7
    assert all(abs(a - c) <= 1 and abs(b - d) <= 1 for (a, b), (c, d) in itertools.pairwise(dots))
    assert line_dots(2, 5, 2, 5) == [(2, 5)]


def test_the_canvas_gives_a_cell_to_the_last_role_and_shows_rules_as_dotted_lines() -> None:
    canvas = Canvas(3, 2)
    canvas.rule(0, "marker")
    canvas.line([(0, 0), (5, 7)], "loss")
    top, bottom = canvas.row(0), canvas.row(1)
    assert top[0][1] == "loss" and ord(top[0][0]) > 0x2800
    assert bottom[0] == (RULE_GLYPH, "marker") and bottom[2][1] == "loss" and len(top) == 3


def test_series_rows_draw_each_series_in_its_colour_with_markers_a_range_and_a_legend() -> None:
    series = [Series("a", [(1, 3.0), (50, 1.0)]), Series("b", [(1, 2.0), (40, 0.5)])]
    rows = series_rows(series, 40, 10, markers=[25])
    assert len(rows) == 10
    roles = {role for row in rows for _, role in row}
    assert {"axis", "series-0", "series-1", "marker"} <= roles
    assert rows[0][0] == ("     3 ┤", "axis") and "50" in rows[-2][0][0]
    assert "".join(text for text, _ in rows[-1]).split() == ["━━", "a", "━━", "b"]
    only_zero = [Series("a", [(1, 0.0)])]
    assert series_rows(only_zero, 40, 10, log_y=True, empty_text="nothing") == [[("nothing", "axis")]]
    assert series_rows(series, 10, 10) == []
