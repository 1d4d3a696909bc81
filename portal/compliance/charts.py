"""Bar charts as SVG geometry (no JavaScript), for the oversight page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# --- oversight -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    value: int
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """A server-rendered bar chart: geometry in SVG user units, no styles (CSP-safe)."""

    id: str
    title: str
    description: str
    days: list[date]
    values: list[int]
    bars: list[Bar]
    width: int
    height: int
    plot_top: int
    plot_bottom: int
    max_value: int
    ticks: list[tuple[float, str]]  # (x, label) along the bottom

    @property
    def total(self) -> int:
        return sum(self.values)


CHART_WIDTH, CHART_HEIGHT = 560, 150
_LEFT, _RIGHT, _TOP, _BOTTOM = 36, 8, 14, 24


def bar_chart(chart_id: str, title: str, description: str, days: list[date],
              values: list[int]) -> Chart:
    plot_width = CHART_WIDTH - _LEFT - _RIGHT
    plot_height = CHART_HEIGHT - _TOP - _BOTTOM
    slot = plot_width / max(len(days), 1)
    top = max([*values, 1])
    bars, ticks = [], []
    for i, (day, value) in enumerate(zip(days, values, strict=True)):
        height = plot_height * value / top
        x = _LEFT + i * slot
        bars.append(Bar(x=round(x + slot * 0.15, 1), y=round(_TOP + plot_height - height, 1),
                        width=round(slot * 0.7, 1), height=round(height, 1), value=value,
                        label=f"{day:%d %b}: {value}"))
        if i % 2 == 0 or len(days) <= 7:
            ticks.append((round(x + slot / 2, 1), f"{day.day} {day:%b}"))
    return Chart(id=chart_id, title=title, description=description, days=days, values=values,
                 bars=bars, width=CHART_WIDTH, height=CHART_HEIGHT, plot_top=_TOP,
                 plot_bottom=_TOP + plot_height, max_value=top, ticks=ticks)
