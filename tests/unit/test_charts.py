"""Inline SVG charts of the monitoring page: scales, empty data, escaping."""

from __future__ import annotations

import re

import pytest

from cd4ml.serving.charts import bar_chart, hbar_chart, line_chart, nice_max, number, steps


@pytest.mark.parametrize("value, top", [(0, 1.0), (0.7, 1.0), (1.0, 1.0), (1.2, 2.0), (230, 250.0), (260, 500.0),
                                        (9_999, 10_000.0)])
def test_the_axis_ends_at_a_round_number(value, top):
    assert nice_max(value) == top
    assert steps(top) in (4, 5)


def test_numbers_are_short():
    assert [number(v) for v in (0, 0.1234, 12.5, 12.0, 1234.4)] == ["0", "0.123", "12.5", "12", "1,234"]


def test_stacked_bars_add_up_and_carry_their_values():
    svg = str(bar_chart(["a", "b"], [("x", [1, 3]), ("y", [1, 1])], title="T", chart_id="c"))
    heights = [float(h) for h in re.findall(r'height="([^"]+)" fill="[^"]+"><title>', svg)]  # the bars: a.x a.y b.x b.y
    assert heights[0] == heights[1] == heights[3] and heights[2] == pytest.approx(3 * heights[0], abs=0.15)
    assert "<title>b · x: 3</title>" in svg and 'id="c"' in svg and ">T</text>" in svg


def test_no_data_says_so():
    assert "no data yet" in str(bar_chart([], [], title="T", chart_id="c"))
    assert "no data yet" in str(line_chart(["a"], [("x", [None])], title="T", chart_id="c"))
    assert "no data yet" in str(hbar_chart([], [], title="T", chart_id="c"))


def test_text_is_escaped():
    svg = str(hbar_chart(["<script>"], [1.0], title="<T>", chart_id="c", markers=[(0.5, "<m>", "#000")]))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;T&gt;" in svg and "&lt;m&gt;" in svg
