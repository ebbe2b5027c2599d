"""The leaderboard's statistics figures as inline SVG, for templates/leaderboards/_statistics.html: interval bars,
challengeR's rank-stability (blob) plot and the significance map. Drawn from a snapshot's stored statistics only
(nothing is computed from case values); presentation attributes only (no script, no style attribute), every
participant name escaped. The SVG bodies are built here in one pass because a leaderboard page draws hundreds of
shapes and the template engine costs tens of microseconds per variable; the page's text alternatives (the tables
of numbers) stay in the template."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

BAR_WIDTH = 200  # SVG user units of one interval bar
CELL = 16  # SVG user units of one significance-map cell and one rank-plot column
PLOT_MARGIN = 40
INK, ACCENT, BLOB, FAINT, EMPTY = "#1d3557", "#e63946", "#457b9d", "#dde3ea", "#f1f4f8"


@dataclass
class IntervalRow:
    rank: int
    participant: str
    estimate: float | None
    low: float | None
    high: float | None
    rank_median: float | None
    rank_low: float | None
    rank_high: float | None
    stability: float | None
    bar: SafeString = field(default_factory=lambda: mark_safe(""))


@dataclass
class Figures:
    metric: str
    direction: str
    confidence: float
    samples: int | None
    axis_low: float | None
    axis_high: float | None
    intervals: list[IntervalRow]
    has_entries: bool
    rank_plot: dict | None
    significance: dict | None
    unavailable: dict = field(default_factory=dict)


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def build(*, statistics: dict, rows: list, page_rows: list, places: int = 3, metric_index: int = 0) -> Figures | None:
    """The figures of a snapshot's `statistics`: interval bars for the `page_rows` shown (on one axis for the whole
    leaderboard, so pages compare), the rank plot and significance map of the top entries of `rows`
    (spinebench.leaderboards.services.Row); None when there are no statistics yet."""
    if not statistics:
        return None
    entries = statistics.get("entries", {})
    ends = [v for e in entries.values() for v in (e.get("ci_low"), e.get("ci_high")) if _finite(v)]
    ends += [row.values[metric_index] for row in page_rows if _finite(row.values[metric_index])]
    axis = (min(ends), max(ends)) if ends else None
    axis_low, axis_high = axis or (None, None)
    intervals = []
    for row in page_rows:
        entry = entries.get(str(row.submission.pk), {})
        interval = IntervalRow(
            rank=row.rank, participant=row.participant, estimate=row.values[metric_index],
            low=entry.get("ci_low"), high=entry.get("ci_high"), rank_median=entry.get("rank_median"),
            rank_low=entry.get("rank_low"), rank_high=entry.get("rank_high"), stability=entry.get("stability"),
        )
        if axis is not None and _finite(interval.low) and _finite(interval.high):
            interval.bar = _interval_bar(interval, axis[0], axis[1], places)
        intervals.append(interval)
    top = {int(pk) for pk in statistics.get("rank_counts", {})}
    top |= set((statistics.get("significance") or {}).get("submissions", []))
    names = {row.submission.pk: (row.rank, row.participant) for row in rows if row.submission.pk in top}
    return Figures(
        metric=statistics.get("metric", ""), direction=statistics.get("direction", ""),
        confidence=statistics.get("confidence", 0.95), samples=statistics.get("samples"),
        axis_low=axis_low, axis_high=axis_high, intervals=intervals, has_entries=bool(entries),
        rank_plot=_rank_plot(statistics.get("rank_counts", {}), names, statistics.get("samples")),
        significance=_significance(statistics.get("significance"), names),
        unavailable=statistics.get("unavailable", {}),
    )


def _interval_bar(interval: IntervalRow, axis_low: float, axis_high: float, places: int) -> SafeString:
    span = (axis_high - axis_low) or 1.0

    def x(value: float) -> float:
        return round(4 + (BAR_WIDTH - 8) * (value - axis_low) / span, 2)

    if interval.low is None or interval.high is None:
        raise ValueError("an interval bar needs both ends")
    low, high = x(interval.low), x(interval.high)
    label = f"95 % interval {interval.low:.{places}f} to {interval.high:.{places}f}"
    parts = [
        (f'<svg class="ci-bar" width="{BAR_WIDTH}" height="14" viewBox="0 0 {BAR_WIDTH} 14" role="img" '
         f'aria-label="{escape(label)}">'),
        f'<line x1="0" y1="7" x2="{BAR_WIDTH}" y2="7" stroke="{FAINT}" stroke-width="1"/>',
        f'<line x1="{low}" y1="7" x2="{high}" y2="7" stroke="{INK}" stroke-width="3"/>',
        f'<line x1="{low}" y1="2" x2="{low}" y2="12" stroke="{INK}" stroke-width="1.5"/>',
        f'<line x1="{high}" y1="2" x2="{high}" y2="12" stroke="{INK}" stroke-width="1.5"/>',
    ]
    if interval.estimate is not None and _finite(interval.estimate):
        parts.append(f'<circle cx="{x(interval.estimate)}" cy="7" r="3.5" fill="{ACCENT}"/>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _rank_plot(counts: dict, names: dict, samples: int | None) -> dict | None:
    """challengeR's blob plot: one column per entry (leaderboard order), a circle at each rank it took in the
    bootstrap, its area proportional to the share of resamples."""
    shown = [(int(pk), ranks) for pk, ranks in counts.items() if int(pk) in names]
    if not shown or not samples:
        return None
    shown.sort(key=lambda item: (names[item[0]][0], item[0]))
    top_rank = max(int(rank) for _, ranks in shown for rank in ranks)
    width, height = PLOT_MARGIN + len(shown) * CELL + 10, PLOT_MARGIN + top_rank * CELL + 10
    parts = ['<text x="4" y="14" font-size="10" fill="#444">rank</text>']
    for rank in range(1, top_rank + 1):
        y = PLOT_MARGIN + (rank - 0.5) * CELL
        parts.append(f'<line x1="34" y1="{y}" x2="{width}" y2="{y}" stroke="{EMPTY}" stroke-width="1"/>'
                     f'<text x="30" y="{y}" font-size="9" text-anchor="end" dominant-baseline="middle" '
                     f'fill="#444">{rank}</text>')
    columns = []
    for column, (pk, ranks) in enumerate(shown):
        x = PLOT_MARGIN + column * CELL + CELL / 2
        rank, name = names[pk]
        columns.append({"number": column + 1, "rank": rank, "participant": name})
        parts.append(f'<text x="{x}" y="30" font-size="9" text-anchor="middle" fill="#444"><title>#{rank} '
                     f'{escape(name)}</title>{column + 1}</text>')
        for taken, count in sorted(ranks.items(), key=lambda item: int(item[0])):
            share = count / samples
            radius = round(max(1.0, CELL / 2 * math.sqrt(share)), 2)
            parts.append(f'<circle cx="{x}" cy="{PLOT_MARGIN + (int(taken) - 0.5) * CELL}" r="{radius}" '
                         f'fill="{BLOB}" fill-opacity="0.8"><title>{escape(name)}: rank {int(taken)} in '
                         f'{100 * share:.0f} % of resamples</title></circle>')
    svg = (f'<svg class="rank-plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="rank-plot-title" aria-describedby="rank-plot-description">{"".join(parts)}</svg>')
    return {"columns": columns, "svg": mark_safe(svg)}


def _significance(matrix: dict | None, names: dict) -> dict | None:
    """The significance map: row i, column j filled when entry i is significantly better than entry j; and per
    entry, in words, which others it beats (the text alternative)."""
    if not matrix:
        return None
    entries = [(pk, *names.get(pk, (None, str(pk)))) for pk in matrix["submissions"]]
    size = PLOT_MARGIN + len(entries) * CELL + 10
    parts, rows = [], []
    for i, (_, rank, name) in enumerate(entries):
        centre = PLOT_MARGIN + i * CELL + CELL / 2
        parts.append(f'<text x="{centre}" y="32" font-size="9" text-anchor="middle" fill="#444">{i + 1}</text>'
                     f'<text x="34" y="{centre}" font-size="9" text-anchor="end" dominant-baseline="middle" '
                     f'fill="#444">{i + 1}</text>')
        better_than = []
        for j, (_, other_rank, other_name) in enumerate(entries):
            if i == j:
                continue
            better = matrix["better"][i][j]
            verdict = "is" if better else "is not"
            parts.append(f'<rect x="{PLOT_MARGIN + j * CELL}" y="{PLOT_MARGIN + i * CELL}" width="15" height="15" '
                         f'fill="{INK if better else EMPTY}"><title>{escape(name)} {verdict} significantly better '
                         f'than {escape(other_name)} (adjusted p = {matrix["p"][i][j]:.4f})</title></rect>')
            if better:
                better_than.append(f"#{other_rank} {other_name}")
        rows.append({"number": i + 1, "rank": rank, "participant": name, "wins": matrix["wins"][i],
                     "better_than": better_than})
    svg = (f'<svg class="significance-map" width="{size}" height="{size}" viewBox="0 0 {size} {size}" role="img" '
           f'aria-labelledby="significance-title" aria-describedby="significance-description">{"".join(parts)}</svg>')
    return {"alpha": matrix["alpha"], "rows": rows, "svg": mark_safe(svg)}
