"""Celery tasks of the scoring queue. Each takes primary keys as keyword-only arguments, locks the row, checks the
status and acts once; a redelivered message (worker killed, visibility timeout) finds the work done or redoes the
part that never committed."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from .models import Submission
from .scoring import fail, score_predictions
from .status import ACTIVE, Status, transition
from .uploads import UploadError, predictions_location

logger = logging.getLogger(__name__)


def _wait_while_paused() -> None:
    """Test hook (SPINEBENCH_SCORING_PAUSE_FILE): hold scoring inside its transaction while the file exists."""
    pause_file = settings.SPINEBENCH_SCORING_PAUSE_FILE
    while pause_file and Path(pause_file).exists():
        time.sleep(0.05)


@shared_task(name="spinebench.submissions.tasks.score_submission")
def score_submission(*, submission_pk: int) -> str:
    # 1. Claim: queued -> scoring, committed at once so pages show it. A message delivered again after its worker
    #    died finds `scoring` and goes on to step 2.
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_pk).first()
        if submission is None:
            return "gone"
        if submission.status == Status.QUEUED:
            submission.started_at = timezone.now()
            submission.save(update_fields=["started_at"])
            transition(submission, Status.SCORING)
        elif submission.status != Status.SCORING:
            return f"nothing to do: {submission.status}"
    # 2. Score while holding the row lock. A live duplicate gets no lock and leaves; a dead worker's transaction was
    #    rolled back by the database, so nothing it did is visible and this run scores once.
    with transaction.atomic():
        try:
            submission = (
                Submission.objects.select_for_update(nowait=True, of=("self",))
                .select_related("phase__dataset")
                .get(pk=submission_pk)
            )
        except OperationalError:  # the lock is held: a live duplicate delivery is scoring it
            return "another worker is scoring it"
        if submission.status != Status.SCORING:
            return f"nothing to do: {submission.status}"
        _wait_while_paused()
        try:
            with predictions_location(submission) as predictions_path:
                evaluation = score_predictions(submission, predictions_path)
        except UploadError as problem:  # a stored zip that cannot be unpacked: failed at once, never left scoring
            fail(submission, str(problem))
            return "failed"
    return "scored" if evaluation else "failed"


@shared_task(name="spinebench.submissions.tasks.sweep_time_limits")
def sweep_time_limits() -> int:
    """Fail every active submission that outlived its phase's time limit, with the reason. Rows locked by a job that
    is still working are skipped (the next sweep sees them)."""
    now = timezone.now()
    swept = 0
    for pk in Submission.objects.filter(status__in=ACTIVE).values_list("pk", flat=True):
        with transaction.atomic():
            submission = (
                Submission.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("phase")
                .filter(pk=pk)
                .first()
            )
            if submission is None or submission.status not in ACTIVE:
                continue
            limit = submission.phase.time_limit_seconds
            if (now - submission.created).total_seconds() <= limit:
                continue
            submission.finished_at = now
            submission.save(update_fields=["finished_at"])
            transition(
                submission,
                Status.FAILED,
                error=f"Did not finish within this phase's time limit of {limit} s (it was {submission.status}).",
            )
            logger.warning("submission %s failed by the time-limit sweep", pk)
            swept += 1
    return swept
