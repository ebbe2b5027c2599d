"""Public phase leaderboard page and its CSV / JSON exports."""

import csv

from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from spinebench.challenges.models import Phase
from spinebench.challenges.permissions import can_view_phase
from spinebench.challenges.registry import metric_title

from .services import export_records, leaderboard_rows, rank_stability


def get_visible_phase(request, challenge: str, phase: str) -> Phase:
    found = get_object_or_404(Phase.objects.select_related("challenge"), challenge__slug=challenge, slug=phase)
    if not can_view_phase(found, request.user):
        raise Http404
    return found


def phase_leaderboard(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    metrics = phase.leaderboard_metrics
    rows = leaderboard_rows(phase)
    stability = rank_stability(phase, rows)
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
        },
    )


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
