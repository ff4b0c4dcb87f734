"""A small line chart as inline SVG, drawn on the server (no JavaScript, no external assets)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

__all__ = ["line_chart"]

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 14, 34


def _x_positions(count: int) -> list[float]:
    span = WIDTH - LEFT - RIGHT
    if count == 1:
        return [LEFT + span / 2]
    return [LEFT + span * i / (count - 1) for i in range(count)]


def line_chart(
    times: Sequence[datetime],
    values: Sequence[float],
    *,
    threshold: float | None = None,
    title: str = "",
    y_max: float = 1.0,
) -> str:
    """SVG markup of ``values`` (0..``y_max``) in time order, one labelled point per value.

    Points are evenly spaced (reports come at irregular times); the first and last times label
    the x axis. A dashed line marks ``threshold`` when given.
    """
    if len(times) != len(values):
        raise ValueError(f"{len(times)} times but {len(values)} values")
    top = max([y_max, *values]) or 1.0
    span_y = HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + span_y * (1 - value / top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
        'class="chart">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        value = tick * top
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            'stroke="#e3e3e3"/>'
            f'<text x="{LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#555">{value:.2f}</text>'
        )
    if threshold is not None:
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}" stroke="#c0392b" stroke-dasharray="5 4" '
            'class="threshold"/>'
        )
    xs = _x_positions(len(values))
    if len(values) > 1:
        points = " ".join(f"{x:.1f},{y(v):.1f}" for x, v in zip(xs, values, strict=True))
        parts.append(f'<polyline fill="none" stroke="#2c6fbb" stroke-width="2" points="{points}"/>')
    for x, when, value in zip(xs, times, values, strict=True):
        label = f"{when:%Y-%m-%d %H:%M}: {value:.3f}"
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y(value):.1f}" r="3.5" fill="#2c6fbb" class="point">'
            f"<title>{escape(label)}</title></circle>"
        )
    if times:
        parts.append(
            f'<text x="{LEFT}" y="{HEIGHT - 10}" font-size="11" fill="#555">'
            f"{times[0]:%Y-%m-%d %H:%M}</text>"
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 10}" font-size="11" fill="#555" '
            f'text-anchor="end">{times[-1]:%Y-%m-%d %H:%M}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
