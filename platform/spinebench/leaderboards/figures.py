"""Geometry of the leaderboard's statistics figures, drawn as inline SVG by templates/leaderboards/_statistics.html
(no script, no style attribute: coordinates only). Everything here reads a snapshot's stored statistics; nothing
is computed from case values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Entries listed with their interval bar on the page (the JSON export has every entry's interval).
INTERVAL_ROWS = 100
BAR_WIDTH = 200  # SVG user units of one interval bar
CELL = 16  # SVG user units of one significance-map cell and one rank-plot column
PLOT_MARGIN = 40


@dataclass
class IntervalRow:
    rank: int
    participant: str
    submission: int
    estimate: float | None
    low: float | None
    high: float | None
    rank_median: float | None
    rank_low: float | None
    rank_high: float | None
    stability: float | None
    # SVG x positions of the interval's ends and of the estimate (None: nothing to draw)
    x_low: float | None = None
    x_high: float | None = None
    x_estimate: float | None = None


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
    more_rows: int
    rank_plot: dict | None
    significance: dict | None
    unavailable: dict = field(default_factory=dict)


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)


def build(*, statistics: dict, rows: list, metric_index: int = 0) -> Figures | None:
    """The figures of a snapshot's `statistics` for its `rows` (spinebench.leaderboards.services.Row), or None when
    there are none yet."""
    if not statistics:
        return None
    entries = statistics.get("entries", {})
    intervals = []
    for row in rows[:INTERVAL_ROWS]:
        entry = entries.get(str(row.submission.pk), {})
        intervals.append(IntervalRow(
            rank=row.rank, participant=row.participant, submission=row.submission.pk,
            estimate=row.values[metric_index], low=entry.get("ci_low"), high=entry.get("ci_high"),
            rank_median=entry.get("rank_median"), rank_low=entry.get("rank_low"), rank_high=entry.get("rank_high"),
            stability=entry.get("stability"),
        ))
    ends = [v for r in intervals for v in (r.low, r.high, r.estimate) if _finite(v)]
    axis_low, axis_high = (min(ends), max(ends)) if ends else (None, None)
    if ends:
        span = (axis_high - axis_low) or 1.0
        scale = lambda value: round(4 + (BAR_WIDTH - 8) * (value - axis_low) / span, 2) if _finite(value) else None  # noqa: E731
        for r in intervals:
            if _finite(r.low) and _finite(r.high):
                r.x_low, r.x_high = scale(r.low), scale(r.high)
            r.x_estimate = scale(r.estimate)
    names = {row.submission.pk: (row.rank, row.participant) for row in rows}
    return Figures(
        metric=statistics.get("metric", ""), direction=statistics.get("direction", ""),
        confidence=statistics.get("confidence", 0.95), samples=statistics.get("samples"),
        axis_low=axis_low, axis_high=axis_high, intervals=intervals, has_entries=bool(entries), more_rows=max(0, len(rows) - INTERVAL_ROWS),
        rank_plot=_rank_plot(statistics.get("rank_counts", {}), names, statistics.get("samples")),
        significance=_significance(statistics.get("significance"), names),
        unavailable=statistics.get("unavailable", {}),
    )


def _rank_plot(counts: dict, names: dict, samples: int | None) -> dict | None:
    """challengeR's blob plot: one column per entry (leaderboard order), a circle at each rank it took in the
    bootstrap, its area proportional to the share of resamples."""
    shown = [(int(pk), ranks) for pk, ranks in counts.items() if int(pk) in names]
    if not shown or not samples:
        return None
    shown.sort(key=lambda item: (names[item[0]][0], item[0]))
    top_rank = max(int(rank) for _, ranks in shown for rank in ranks)
    columns, blobs = [], []
    for column, (pk, ranks) in enumerate(shown):
        x = PLOT_MARGIN + column * CELL + CELL / 2
        rank, name = names[pk]
        columns.append({"x": x, "rank": rank, "participant": name})
        for taken, count in sorted(ranks.items(), key=lambda item: int(item[0])):
            share = count / samples
            blobs.append({
                "x": x, "y": PLOT_MARGIN + (int(taken) - 0.5) * CELL, "r": round(max(1.0, CELL / 2 * math.sqrt(share)), 2),
                "rank": int(taken), "share": share, "participant": name,
            })
    ticks = [{"rank": r, "y": PLOT_MARGIN + (r - 0.5) * CELL} for r in range(1, top_rank + 1)]
    return {
        "columns": columns, "blobs": blobs, "ticks": ticks,
        "width": PLOT_MARGIN + len(shown) * CELL + 10, "height": PLOT_MARGIN + top_rank * CELL + 10,
    }


def _significance(matrix: dict | None, names: dict) -> dict | None:
    """The significance map: row i, column j filled when entry i is significantly better than entry j."""
    if not matrix:
        return None
    entries = [(pk, *names.get(pk, (None, str(pk)))) for pk in matrix["submissions"]]
    cells = []
    rows = []
    for i, (pk, rank, name) in enumerate(entries):
        better_than = []
        for j, (other, other_rank, other_name) in enumerate(entries):
            if i == j:
                continue
            better = matrix["better"][i][j]
            cells.append({
                "x": PLOT_MARGIN + j * CELL, "y": PLOT_MARGIN + i * CELL, "better": better, "p": matrix["p"][i][j],
                "row": name, "column": other_name,
            })
            if better:
                better_than.append(f"#{other_rank} {other_name}")
        rows.append({"rank": rank, "participant": name, "wins": matrix["wins"][i], "better_than": better_than})
    size = PLOT_MARGIN + len(entries) * CELL + 10
    labels = [{"i": i + 1, "x": PLOT_MARGIN + i * CELL + CELL / 2, "y": PLOT_MARGIN + i * CELL + CELL / 2}
              for i in range(len(entries))]
    return {"alpha": matrix["alpha"], "cells": cells, "rows": rows, "size": size, "labels": labels}
