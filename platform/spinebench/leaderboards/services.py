"""Re-ranking one phase and reading its leaderboard rows (used by the pages, the API and the exports)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from spinebench.challenges.models import Phase
from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.status import Status

from . import ranking


def _entries(phase: Phase) -> list[ranking.Entry]:
    # A degenerate baseline (constant predictions, or mostly fallbacks) is shown greyed but never ranked as the method.
    evaluations = Evaluation.objects.filter(
        submission__phase=phase, submission__status=Status.SUCCEEDED, published=True, submission__degenerate_reason=""
    ).select_related("submission")
    return [
        ranking.Entry(
            key=evaluation.submission.participant_key,
            submission_pk=evaluation.submission_id,
            created=evaluation.submission.created,
            metrics=evaluation.aggregates,
        )
        for evaluation in evaluations
    ]


def rerank_phase(phase_pk: int) -> None:
    """Recompute the ranks of one phase's evaluations (others are untouched). The phase row lock serialises
    concurrent re-rankings of the same phase."""
    with transaction.atomic():
        phase = Phase.objects.select_for_update().get(pk=phase_pk)
        metrics = phase.leaderboard_metrics
        ranked = ranking.leaderboard(
            _entries(phase),
            metrics=metrics,
            directions={key: phase.direction(key) for key in metrics},
            method=phase.ranking_method,
            policy=phase.selection,
        )
        new_rank = {entry.submission_pk: rank for rank, entry in ranked}
        changed = []
        for evaluation in Evaluation.objects.filter(submission__phase=phase):
            rank = new_rank.get(evaluation.submission_id)
            if evaluation.rank != rank:
                evaluation.rank = rank
                changed.append(evaluation)
        Evaluation.objects.bulk_update(changed, ["rank"])


@dataclass(frozen=True)
class Row:
    rank: int
    submission: Submission
    values: list[float | None]

    @property
    def participant(self) -> str:
        return self.submission.participant_name


def leaderboard_rows(phase: Phase) -> list[Row]:
    metrics = phase.leaderboard_metrics
    evaluations = (
        Evaluation.objects.filter(submission__phase=phase, rank__isnull=False, published=True)
        .select_related("submission__creator", "submission__evaluation")
        .order_by("rank", "submission__created", "submission_id")
    )
    return [
        Row(rank=e.rank, submission=e.submission, values=[e.aggregates.get(key) for key in metrics])
        for e in evaluations
    ]


def degenerate_baselines(phase: Phase) -> list[Submission]:
    """Scored baseline submissions left out of the ranking because the run is degenerate (shown greyed, with the
    reason, below the leaderboard; never in its statistics)."""
    return list(
        Submission.objects.filter(phase=phase, is_baseline=True, status=Status.SUCCEEDED)
        .exclude(degenerate_reason="")
        .select_related("evaluation")
        .order_by("baseline_method", "-created")
    )


def rank_stability(phase: Phase, rows: list[Row]) -> dict[int, float]:
    """submission pk -> bootstrap rank stability of its row, when the ranking metric is reported per case for every
    row (e.g. SMAPE, Dice; not a set-level metric such as ROC AUC). Only this fraction is shown, never case values."""
    metric = phase.ranking_metric
    if len(rows) < 2 or "@" in metric:
        return {}
    per_case = {}
    for row in rows:
        cases = row.submission.evaluation.case_metrics
        if not cases or any(metric not in values for values in cases.values()):
            return {}
        per_case[str(row.submission.pk)] = {case: values[metric] for case, values in cases.items()}
    stability = ranking.bootstrap_rank_stability(per_case, direction=phase.direction(metric), samples=500)
    return {int(pk): value for pk, value in stability.items()}


def export_records(phase: Phase) -> list[dict]:
    """Rows as plain dicts (CSV and JSON exports, the API)."""
    metrics = phase.leaderboard_metrics
    return [
        {
            "rank": row.rank,
            "participant": row.participant,
            "is_baseline": row.submission.is_baseline,
            "submission": row.submission.pk,
            "created": row.submission.created.isoformat(),
            **dict(zip(metrics, row.values)),
        }
        for row in leaderboard_rows(phase)
    ]
