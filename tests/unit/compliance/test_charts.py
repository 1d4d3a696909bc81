"""The oversight bar charts: SVG geometry computed from the values, no rendering."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from portal.compliance.charts import CHART_HEIGHT, CHART_WIDTH, bar_chart

# The plot area: 36 units of axis on the left, 8 on the right, 14 on top, 24 below.
PLOT_WIDTH, PLOT_HEIGHT = CHART_WIDTH - 36 - 8, CHART_HEIGHT - 14 - 24


def _days(n: int) -> list[date]:
    return [date(2026, 3, 1) + timedelta(days=i) for i in range(n)]


def test_bars_fill_their_slots_and_scale_to_the_largest_value() -> None:
    chart = bar_chart("c1", "Views", "Views per day", _days(4), [0, 5, 10, 2])
    slot = PLOT_WIDTH / 4
    assert (chart.width, chart.height, chart.plot_top, chart.plot_bottom) == (
        CHART_WIDTH, CHART_HEIGHT, 14, 14 + PLOT_HEIGHT)
    assert chart.max_value == 10 and chart.total == 17
    assert [b.value for b in chart.bars] == [0, 5, 10, 2]
    tallest = chart.bars[2]
    assert tallest.height == PLOT_HEIGHT and tallest.y == 14  # reaches the top
    assert chart.bars[1].height == pytest.approx(PLOT_HEIGHT / 2, abs=0.05)
    assert chart.bars[0].height == 0 and chart.bars[0].y == chart.plot_bottom
    for i, bar in enumerate(chart.bars):
        # Every bar stands on the axis, 70% of its slot wide, centred in the slot.
        assert bar.y + bar.height == pytest.approx(chart.plot_bottom, abs=0.1)
        assert bar.width == round(slot * 0.7, 1)
        assert bar.x == round(36 + i * slot + slot * 0.15, 1)
    assert chart.bars[3].label == "04 Mar: 2"


def test_all_zero_values_draw_flat_bars_without_dividing_by_zero() -> None:
    chart = bar_chart("c", "t", "d", _days(3), [0, 0, 0])
    assert chart.max_value == 1
    assert all(b.height == 0 for b in chart.bars)
    assert chart.total == 0


def test_a_week_or_less_labels_every_day_a_longer_period_every_other() -> None:
    week = bar_chart("w", "t", "d", _days(7), [1] * 7)
    assert [label for _, label in week.ticks] == [f"{d} Mar" for d in range(1, 8)]
    fortnight = bar_chart("f", "t", "d", _days(14), [1] * 14)
    assert [label for _, label in fortnight.ticks] == [f"{d} Mar" for d in range(1, 15, 2)]
    slot = PLOT_WIDTH / 14
    assert fortnight.ticks[1][0] == round(36 + 2 * slot + slot / 2, 1)


def test_no_days_make_an_empty_chart() -> None:
    chart = bar_chart("e", "t", "d", [], [])
    assert chart.bars == [] and chart.ticks == [] and chart.total == 0


def test_days_and_values_must_match() -> None:
    with pytest.raises(ValueError, match="shorter"):
        bar_chart("x", "t", "d", _days(2), [1])
