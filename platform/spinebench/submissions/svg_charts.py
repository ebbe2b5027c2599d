"""Small inline SVG charts for pages (no script, no style attribute: CSP-clean). Every text is escaped; each chart has
a <title> and <desc>, and the page that shows one also shows its numbers in a table.

Coordinates: a value v in [low, high] maps to low -> `start`, high -> `end` of the plot area, linearly."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

#: Colour-blind-safe line colours (Okabe-Ito), cycled.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
WIDTH, HEIGHT = 720, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 170, 16, 40


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float]]  # (x, y) in data units


def _n(value: float) -> str:
    return f"{value:.1f}"


def _scale(value: float, low: float, high: float, start: float, end: float) -> float:
    if high == low:
        return (start + end) / 2
    return start + (value - low) / (high - low) * (end - start)


def line_chart(
    *, lines: Sequence[Line], title: str, x_ticks: Sequence[tuple[float, str]], y_label: str, invert_y: bool = False,
    y_integer: bool = False,
) -> SafeString:
    """Lines over a shared x axis (e.g. time in seconds); `invert_y` puts the smallest y at the top (ranks)."""
    xs = [x for line in lines for x, _ in line.points] or [0.0]
    ys = [y for line in lines for _, y in line.points] or [0.0]
    x_low, x_high = min(xs), max(xs)
    y_low, y_high = min(ys), max(ys)
    top, bottom = (TOP, HEIGHT - BOTTOM) if invert_y else (HEIGHT - BOTTOM, TOP)

    def px(x: float) -> float:
        return _scale(x, x_low, x_high, LEFT, WIDTH - RIGHT)

    def py(y: float) -> float:
        return _scale(y, y_low, y_high, top, bottom)

    y_ticks = sorted({y_low, y_high, *([round((y_low + y_high) / 2)] if y_integer else [(y_low + y_high) / 2])})
    parts = [
        format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>', LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT,
                    HEIGHT - BOTTOM),
        format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#888"/>', LEFT, TOP, LEFT, HEIGHT - BOTTOM),
        format_html('<text x="12" y="{}" font-size="12" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>',
                    HEIGHT / 2, HEIGHT / 2, y_label),
    ]
    for value in y_ticks:
        text = f"{value:.0f}" if y_integer else f"{value:.3g}"
        parts.append(format_html('<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>', LEFT - 6,
                                 _n(py(value) + 4), text))
    for value, text in x_ticks:
        parts.append(format_html('<text x="{}" y="{}" font-size="11" text-anchor="middle">{}</text>', _n(px(value)),
                                 HEIGHT - BOTTOM + 16, text))
    for index, line in enumerate(lines):
        colour = PALETTE[index % len(PALETTE)]
        coordinates = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in line.points)
        parts.append(format_html(
            '<g><title>{}</title><polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>{}</g>',
            line.label, coordinates, colour,
            format_html_join("", '<circle cx="{}" cy="{}" r="3" fill="{}"/>',
                             ((_n(px(x)), _n(py(y)), colour) for x, y in line.points)),
        ))
        legend_y = TOP + 14 + index * 16
        parts.append(format_html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="3"/>'
            '<text x="{}" y="{}" font-size="11">{}</text>',
            WIDTH - RIGHT + 10, legend_y - 4, WIDTH - RIGHT + 26, legend_y - 4, colour, WIDTH - RIGHT + 30, legend_y,
            line.label[:24],
        ))
    return _svg(title, parts)


def difference_chart(*, labels: Sequence[str], differences: Sequence[float], title: str, y_label: str) -> SafeString:
    """One bar per case from zero to its paired difference (positive up), cases in the given order."""
    values = list(differences) or [0.0]
    low, high = min(0.0, *values), max(0.0, *values)
    if low == high:
        low, high = -1.0, 1.0
    step = (WIDTH - LEFT - 20) / max(len(values), 1)

    def py(y: float) -> float:
        return _scale(y, low, high, HEIGHT - BOTTOM, TOP)

    zero = py(0.0)
    parts = [
        format_html('<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#444"/>', LEFT, _n(zero), WIDTH - 20, _n(zero)),
        format_html('<text x="12" y="{}" font-size="12" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>',
                    HEIGHT / 2, HEIGHT / 2, y_label),
        format_html('<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>', LEFT - 6, _n(py(high) + 4),
                    f"{high:.3g}"),
        format_html('<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text>', LEFT - 6, _n(py(low) + 4),
                    f"{low:.3g}"),
    ]
    for index, (label, value) in enumerate(zip(labels, differences)):
        x = LEFT + index * step + step * 0.15
        y = min(py(value), zero)
        parts.append(format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
            _n(x), _n(y), _n(max(step * 0.7, 1.0)), _n(abs(py(value) - zero)), PALETTE[0] if value >= 0 else PALETTE[1],
            label, f"{value:.4g}",
        ))
    return _svg(title, parts)


def _svg(title: str, parts: list[SafeString]) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" class="sb-figure figure sb-chart" role="img" '
        'aria-labelledby="chart-title"><title id="chart-title">{}</title>{}</svg>',
        WIDTH, HEIGHT, title, format_html_join("", "{}", ((part,) for part in parts)),
    )
