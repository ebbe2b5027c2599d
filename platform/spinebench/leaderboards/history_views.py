"""The history page of a phase's leaderboard: each entry's rank over time (an SVG line chart and the same numbers in a
table) and the leaderboard as it was at a chosen date. As visible as the phase's leaderboard itself."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.utils import timezone

from spinebench.access import can_see_scores, get_visible_phase
from spinebench.submissions.svg_charts import Line, line_chart

from .history import History, leaderboard_at, parse_moment, phase_history
from .part_choice import PartRefused, requested_kind
from .services import snapshot_rows

#: Entries drawn in the chart (the best-ranked ones now); the table lists them all.
CHART_ENTRIES = 8


def _chart(history: History):
    drawn = history.series[:CHART_ENTRIES]
    if not drawn or not history.times:
        return None
    first, last = history.times[0], history.times[-1]
    ticks = [(first.timestamp(), f"{timezone.localtime(first):%Y-%m-%d %H:%M}")]
    if last != first:
        ticks.append((last.timestamp(), f"{timezone.localtime(last):%Y-%m-%d %H:%M}"))
    return line_chart(
        lines=[
            Line(label=entry.participant, points=[(p.time.timestamp(), float(p.rank)) for p in entry.points])
            for entry in drawn
        ],
        title=f"Rank over time of the top {len(drawn)} entries",
        x_ticks=ticks, y_label="rank", invert_y=True, y_integer=True,
    )


def _changes(history: History) -> list[dict]:
    """The table under the chart: per entry, the snapshots where its rank, value or submission changed."""
    table = []
    for series in history.series:
        previous = None
        for point in series.points:
            state = (point.rank, point.value, point.submission)
            if state != previous:
                table.append({"participant": series.participant, "point": point})
            previous = state
    return table


def phase_history_page(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    if not can_see_scores(phase, request.user):
        raise Http404("This phase's leaderboard is blind until its organizers reveal it.")
    try:  # ?part=final: a split phase's final (private part) leaderboard, as the leaderboard page decides
        kind = requested_kind(phase, request.user, request.GET.get("part"))
    except PartRefused as refused:
        raise Http404(str(refused)) from None
    history = phase_history(phase, kind=kind)
    context = {
        "final": kind is not None,
        "phase": phase,
        "challenge": phase.challenge,
        "history": history,
        "metric_title": phase.metric_title(history.metric) if history.metric else "",
        "chart": _chart(history),
        "changes": _changes(history),
        "at": request.GET.get("at", ""),
    }
    status = 200
    if context["at"]:
        try:
            moment = parse_moment(context["at"])
        except ValueError as error:
            context["at_error"] = str(error)
            status = 400
        else:
            board = leaderboard_at(phase, moment, kind)
            context["moment"] = moment
            context["board"] = board
            context["board_rows"] = snapshot_rows(board.snapshot) if board else []
            context["board_metrics"] = [m["key"] for m in board.snapshot.metrics] if board else []
    return render(request, "leaderboards/history.html", context, status=status)
