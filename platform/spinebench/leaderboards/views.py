"""Public phase leaderboard page and its CSV / JSON exports. Every one reads the phase's latest leaderboard
snapshot (spinebench.leaderboards.services): no view ranks, computes statistics or loads per-case metrics."""

import csv
import io
import json
from types import SimpleNamespace

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import render
from django.utils.functional import SimpleLazyObject

from spinebench.access import (
    can_download_phase_inputs,
    can_see_phase_ground_truth_plots,
    can_see_private_part,
    can_see_scores,
    get_visible_phase,
)
from spinebench.challenges.models import Phase
from spinebench.datasets.byte_ranges import ranged_file_response
from spinebench.datasets.services import inputs_archive
from spinebench.submissions import plots
from spinebench.submissions.models import Submission

from . import figures
from .exports import safe_csv_cell
from .part_choice import PartRefused, requested_kind
from .services import export_records, read_leaderboard, unranked_baselines

#: How long an export body stays cached (its key changes with every new snapshot, so this only bounds memory).
EXPORT_CACHE_SECONDS = 600
#: How long a rendered leaderboard fragment stays cached (its key changes with every snapshot: this bounds memory).
BOARD_CACHE_SECONDS = 600
#: Leaderboard rows per page: rendering is what a long leaderboard costs (about 1 ms a row), so a page holds 100.
ROWS_PER_PAGE = 100


def phase_leaderboard(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    if not can_see_scores(phase, request.user):  # a blind phase: the page says so and shows no score or rank
        return render(
            request,
            "leaderboards/phase.html",
            {
                "phase": phase,
                "challenge": phase.challenge,
                "blind": True,
                "is_participant": phase.challenge.is_participant(request.user),
                "can_download_inputs": can_download_phase_inputs(phase, request.user),
            },
        )
    kind = _kind(request, phase)
    board = read_leaderboard(phase, kind)
    metrics = [metric["key"] for metric in board.snapshot.metrics]
    page = Paginator(board.rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    columns = [(key, phase.metric_title(key), phase.direction(key)) for key in metrics]
    overlay = [row for row in board.rows if row.has_curves][: plots.OVERLAY_TOP]
    plots_allowed = can_see_phase_ground_truth_plots(phase, request.user)
    # The table, its statistics and figures are built only when the rendered fragment is not cached (lazily).
    rows = list(page.object_list)
    shown = SimpleLazyObject(lambda: _rows_with_stability(board, rows))
    return render(
        request,
        "leaderboards/phase.html",
        {
            "phase": phase,
            "challenge": phase.challenge,
            "columns": columns,
            "rows": shown,
            "show_stability": SimpleLazyObject(lambda: any(stability is not None for _, stability in shown)),
            "page_obj": page,
            "statistics": SimpleLazyObject(
                lambda: figures.build(
                    statistics=board.statistics, rows=board.rows, page_rows=rows, places=phase.decimal_places
                )
            ),
            "statistics_pending": board.statistics_pending,
            "statistics_from": board.statistics_from if board.statistics_from != board.snapshot else None,
            "snapshot": board.snapshot,
            "is_participant": phase.challenge.is_participant(request.user),
            "can_download_inputs": can_download_phase_inputs(phase, request.user),
            # The overlay draws the live (public part) curves; the final leaderboard shows no figure of its part.
            "roc_overlay": len(overlay) if plots_allowed and kind is None else 0,
            "plots_withheld": bool(overlay) and not plots_allowed and kind is None,
            "degenerate_baselines": SimpleLazyObject(lambda: unranked_baselines(board.snapshot)),
            "board_key": board_key(phase=phase, board=board, page_number=page.number, columns=columns),
            "board_cache_seconds": BOARD_CACHE_SECONDS,
            "final": kind is not None,
            "final_visible": can_see_private_part(phase, request.user),
            "part_query": "?part=final" if kind is not None else "",
        },
    )


def _kind(request, phase: Phase) -> str | None:
    """The leaderboard `?part=` asks for; a part the user may not see (or that the phase lacks) is not found."""
    try:
        return requested_kind(phase, request.user, request.GET.get("part"))
    except PartRefused as refused:
        raise Http404(str(refused)) from None


def _rows_with_stability(board, rows) -> list:
    return [(row, board.entry_statistics(row.submission.pk).get("stability")) for row in rows]


def board_key(*, phase: Phase, board, page_number: int, columns: list) -> str:
    """What the rendered leaderboard fragment (table, unranked baselines, legend, statistics) depends on: the
    snapshot and the one its statistics come from (a snapshot's rows never change, its statistics are written once,
    with their status), the page, and the phase's fields the fragment shows. Nothing about the viewer: the fragment
    is the same for everyone who may see the page, so one rendering serves them all."""
    source = board.statistics_from
    return "|".join(
        str(part)
        for part in (
            phase.pk,
            phase.challenge.slug,
            phase.slug,
            phase.task,
            phase.decimal_places,
            board.snapshot.pk,
            board.snapshot.created.timestamp(),
            board.snapshot.statistics_status,
            source.pk if source else "",
            source.statistics_status if source else "",
            page_number,
            columns,
        )
    )


@login_required
def phase_inputs(request, challenge, phase):
    """The inputs zip of a CSV phase (spinebench.datasets.services.inputs_archive) for its participants."""
    phase = get_visible_phase(request, challenge, phase)
    if not can_download_phase_inputs(phase, request.user) or not phase.dataset.exists():
        raise Http404("No inputs to download here (register for the challenge first).")
    return ranged_file_response(
        request, inputs_archive(phase.dataset), filename=f"{phase.challenge.slug}-{phase.slug}-inputs.zip"
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
    response = FileResponse(default_storage.open(plots.phase_roc_overlay(phase, rows)), content_type="image/png")
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
    if not can_see_scores(phase, request.user):
        raise Http404("This phase's leaderboard is blind until its organizers reveal it.")
    board = read_leaderboard(phase, _kind(request, phase))

    def build() -> bytes:
        buffer = io.StringIO()
        metrics = [metric["key"] for metric in board.snapshot.metrics]
        fields = ["rank", "participant", "is_baseline", "submission", "created", "method_name", "paper_url", "code_url",
                  *metrics, "ci_low", "ci_high", "team"]
        writer = csv.DictWriter(buffer, fieldnames=fields)
        writer.writeheader()
        for record in export_records(phase, board):
            writer.writerow({key: safe_csv_cell(value) for key, value in record.items()})
        return buffer.getvalue().encode()

    response = HttpResponse(_cached_body("csv", phase, board, build), content_type="text/csv; charset=utf-8")
    name = "final-leaderboard" if board.snapshot.kind == board.snapshot.Kind.PRIVATE else "leaderboard"
    response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-{phase.slug}-{name}.csv"'
    return response


def export_json(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    if not can_see_scores(phase, request.user):
        raise Http404("This phase's leaderboard is blind until its organizers reveal it.")
    board = read_leaderboard(phase, _kind(request, phase))

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
                "part": board.snapshot.kind,
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
