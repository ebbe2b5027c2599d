"""Public phase leaderboard page and its CSV / JSON exports. Every one reads the phase's latest leaderboard
snapshot (spinebench.leaderboards.services): no view ranks, computes statistics or loads per-case metrics."""

import csv
import io
import json
from types import SimpleNamespace

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render

from spinebench.access import (
    can_download_phase_inputs,
    can_see_phase_ground_truth_plots,
    get_visible_phase,
)
from spinebench.challenges.models import Phase
from spinebench.datasets.services import inputs_archive
from spinebench.submissions import plots
from spinebench.submissions.models import Submission

from . import figures
from .exports import safe_csv_cell
from .services import export_records, read_leaderboard, unranked_baselines

#: How long an export body stays cached (its key changes with every new snapshot, so this only bounds memory).
EXPORT_CACHE_SECONDS = 600
#: Leaderboard rows per page: rendering is what a long leaderboard costs (about 1 ms a row), so a page holds 100.
ROWS_PER_PAGE = 100


def phase_leaderboard(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    board = read_leaderboard(phase)
    metrics = [metric["key"] for metric in board.snapshot.metrics]
    page = Paginator(board.rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    stability = {row.submission.pk: board.entry_statistics(row.submission.pk).get("stability") for row in rows}
    overlay = [row for row in board.rows if row.has_curves][: plots.OVERLAY_TOP]
    plots_allowed = can_see_phase_ground_truth_plots(phase, request.user)
    return render(
        request,
        "leaderboards/phase.html",
        {
            "phase": phase,
            "challenge": phase.challenge,
            "columns": [(key, phase.metric_title(key), phase.direction(key)) for key in metrics],
            "rows": [(row, stability.get(row.submission.pk)) for row in rows],
            "show_stability": any(value is not None for value in stability.values()),
            "page_obj": page,
            "statistics": figures.build(
                statistics=board.statistics, rows=board.rows, page_rows=rows, places=phase.decimal_places
            ),
            "statistics_pending": board.statistics_pending,
            "statistics_from": board.statistics_from if board.statistics_from != board.snapshot else None,
            "snapshot": board.snapshot,
            "is_participant": phase.challenge.is_participant(request.user),
            "can_download_inputs": can_download_phase_inputs(phase, request.user),
            "roc_overlay": len(overlay) if plots_allowed else 0,
            "plots_withheld": bool(overlay) and not plots_allowed,
            "degenerate_baselines": unranked_baselines(board.snapshot),
        },
    )


@login_required
def phase_inputs(request, challenge, phase):
    """The inputs zip of a CSV phase (spinebench.datasets.services.inputs_archive) for its participants."""
    phase = get_visible_phase(request, challenge, phase)
    if not can_download_phase_inputs(phase, request.user) or not phase.dataset.exists():
        raise Http404("No inputs to download here (register for the challenge first).")
    return FileResponse(
        inputs_archive(phase.dataset).open("rb"),
        as_attachment=True,
        filename=f"{phase.challenge.slug}-{phase.slug}-inputs.zip",
    )


def phase_roc(request, challenge, phase):
    """PNG overlay of the patient-level ROC curves of the best-ranked submissions (same rule as the ROC of one
    submission: never for a hidden test set, except to its organizers)."""
    phase = get_visible_phase(request, challenge, phase)
    if not can_see_phase_ground_truth_plots(phase, request.user):
        raise Http404
    rows = _rows_with_evaluations([row for row in read_leaderboard(phase).rows if row.has_curves][: plots.OVERLAY_TOP])
    if not plots.overlay_rows(rows):
        raise Http404
    response = FileResponse(plots.phase_roc_overlay(phase, rows).open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


def _rows_with_evaluations(rows):
    """The figure's few rows with their real submissions and evaluations (the ROC overlay draws stored curves)."""
    submissions = Submission.objects.select_related("evaluation").in_bulk([row.submission.pk for row in rows])
    return [
        SimpleNamespace(rank=row.rank, participant=row.participant, submission=submissions[row.submission.pk])
        for row in rows
        if row.submission.pk in submissions
    ]


def _cached_body(kind: str, phase: Phase, board, build) -> bytes:
    """An export's body, built once per snapshot (and statistics) in the cache: exports are the same for everyone
    who may see the phase, and a snapshot never changes once its statistics are written."""
    source = board.statistics_from
    key = (
        f"leaderboard-{kind}:{phase.pk}:{phase.challenge.slug}:{phase.slug}:{board.snapshot.pk}:"
        f"{board.snapshot.created.timestamp()}:{board.snapshot.statistics_status}:"
        f"{source.pk if source else ''}:{source.statistics_status if source else ''}"
    )
    body = cache.get(key)
    if body is None:
        body = build()
        cache.set(key, body, EXPORT_CACHE_SECONDS)
    return body


def export_csv(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    board = read_leaderboard(phase)

    def build() -> bytes:
        buffer = io.StringIO()
        metrics = [metric["key"] for metric in board.snapshot.metrics]
        fields = ["rank", "participant", "is_baseline", "submission", "created", *metrics, "ci_low", "ci_high"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        for record in export_records(phase, board):
            writer.writerow({key: safe_csv_cell(value) for key, value in record.items()})
        return buffer.getvalue().encode()

    response = HttpResponse(_cached_body("csv", phase, board, build), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-{phase.slug}-leaderboard.csv"'
    return response


def export_json(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    board = read_leaderboard(phase)

    def build() -> bytes:
        return json.dumps(
            {
                "challenge": phase.challenge.slug,
                "phase": phase.slug,
                "metrics": [
                    {
                        "key": metric["key"],
                        "title": phase.metric_title(metric["key"]),
                        "direction": metric["direction"],
                    }
                    for metric in board.snapshot.metrics
                ],
                "ranking_method": board.snapshot.ranking_method,
                "snapshot": {
                    "created": board.snapshot.created.isoformat(),
                    "evaluation_version": board.snapshot.evaluation_version,
                    "statistics_status": board.snapshot.statistics_status,
                    "statistics_created": board.statistics_from.created.isoformat() if board.statistics_from else None,
                },
                "rows": export_records(phase, board),
                "statistics": board.statistics,
            },
            cls=DjangoJSONEncoder,
        ).encode()

    return HttpResponse(_cached_body("json", phase, board, build), content_type="application/json")
