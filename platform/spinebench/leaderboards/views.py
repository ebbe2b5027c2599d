"""Public phase leaderboard page and its CSV / JSON exports."""

import csv

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import render

from spinebench.access import (
    can_download_phase_inputs,
    can_see_phase_ground_truth_plots,
    get_visible_phase,
)
from spinebench.challenges.registry import metric_title
from spinebench.datasets.services import inputs_archive
from spinebench.submissions import plots

from .services import export_records, leaderboard_rows, rank_stability


def phase_leaderboard(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    metrics = phase.leaderboard_metrics
    rows = leaderboard_rows(phase)
    stability = rank_stability(phase, rows)
    overlay = plots.overlay_rows(rows)
    plots_allowed = can_see_phase_ground_truth_plots(phase, request.user)
    return render(
        request,
        "leaderboards/phase.html",
        {
            "phase": phase,
            "challenge": phase.challenge,
            "columns": [(key, metric_title(phase.task, key), phase.direction(key)) for key in metrics],
            "rows": [(row, stability.get(row.submission.pk)) for row in rows],
            "show_stability": bool(stability),
            "is_participant": phase.challenge.is_participant(request.user),
            "can_download_inputs": can_download_phase_inputs(phase, request.user),
            "roc_overlay": len(overlay) if plots_allowed else 0,
            "plots_withheld": bool(overlay) and not plots_allowed,
        },
    )


@login_required
def phase_inputs(request, challenge, phase):
    """The inputs zip of a CSV phase (spinebench.datasets.services.inputs_archive) for its participants."""
    phase = get_visible_phase(request, challenge, phase)
    if not can_download_phase_inputs(phase, request.user) or not phase.dataset.exists():
        raise Http404("No inputs to download here (register for the challenge first).")
    return FileResponse(
        inputs_archive(phase.dataset).open("rb"), as_attachment=True,
        filename=f"{phase.challenge.slug}-{phase.slug}-inputs.zip",
    )


def phase_roc(request, challenge, phase):
    """PNG overlay of the patient-level ROC curves of the best-ranked submissions (same rule as the ROC of one
    submission: never for a hidden test set, except to its organizers)."""
    phase = get_visible_phase(request, challenge, phase)
    if not can_see_phase_ground_truth_plots(phase, request.user):
        raise Http404
    rows = leaderboard_rows(phase)
    if not plots.overlay_rows(rows):
        raise Http404
    response = FileResponse(plots.phase_roc_overlay(phase, rows).open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


def export_csv(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-{phase.slug}-leaderboard.csv"'
    fields = ["rank", "participant", "is_baseline", "submission", "created", *phase.leaderboard_metrics]
    writer = csv.DictWriter(response, fieldnames=fields)
    writer.writeheader()
    writer.writerows(export_records(phase))
    return response


def export_json(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    return JsonResponse(
        {
            "challenge": phase.challenge.slug,
            "phase": phase.slug,
            "metrics": [
                {"key": key, "title": metric_title(phase.task, key), "direction": phase.direction(key)}
                for key in phase.leaderboard_metrics
            ],
            "ranking_method": phase.ranking_method,
            "rows": export_records(phase),
        }
    )
