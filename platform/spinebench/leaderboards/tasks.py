"""Celery tasks of the leaderboards app (queue `scoring`): the statistics of a leaderboard snapshot, computed after
the re-rank that wrote it committed. Keyword-only primary keys; the row lock and the status make a redelivered
message do nothing twice."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import transaction

from . import snapshot_statistics
from .models import LeaderboardSnapshot

logger = logging.getLogger(__name__)
Status = LeaderboardSnapshot.StatisticsStatus


@shared_task(name="spinebench.leaderboards.tasks.compute_snapshot_statistics")
def compute_snapshot_statistics(*, snapshot_pk: int) -> str:
    snapshot = LeaderboardSnapshot.objects.select_related("phase__dataset_link__dataset").filter(pk=snapshot_pk).first()
    if snapshot is None or snapshot.statistics_status != Status.PENDING:
        return "done"
    newer = LeaderboardSnapshot.objects.filter(
        phase_id=snapshot.phase_id, kind=snapshot.kind, pk__gt=snapshot.pk
    ).exists()
    if newer:
        # A burst of scorings writes a snapshot each; only the newest is shown, so only its statistics are computed.
        _finish(snapshot_pk, Status.SUPERSEDED, {})
        return "superseded"
    try:
        result = snapshot_statistics.compute(snapshot)
    except Exception as error:
        logger.exception("statistics of leaderboard snapshot %s failed", snapshot_pk)
        _finish(snapshot_pk, Status.FAILED, {"unavailable": {"ci": f"the computation failed ({type(error).__name__})"}})
        return "failed"
    _finish(snapshot_pk, Status.READY, result)
    return "ready"


def _finish(snapshot_pk: int, status: str, statistics: dict) -> None:
    with transaction.atomic():
        snapshot = LeaderboardSnapshot.objects.select_for_update().filter(pk=snapshot_pk).first()
        if snapshot is None or snapshot.statistics_status != Status.PENDING:
            return
        snapshot.statistics = statistics
        snapshot.statistics_status = status
        snapshot.save(update_fields=["statistics", "statistics_status"])
