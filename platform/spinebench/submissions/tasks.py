"""Celery tasks of the scoring queue. Each takes primary keys as keyword-only arguments, locks the row, checks the
status and acts once; a redelivered message (worker killed, visibility timeout) finds the work done or redoes the
part that never committed. The embedded broker never redelivers: `sweep_stale_submissions` requeues what a dead
worker left behind (a duplicate message is harmless for the same reason)."""

from __future__ import annotations

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db import OperationalError, transaction
from django.utils import timezone

from spinebench.workers.services import note_requeue

from .models import Submission
from .scoring import fail, score_predictions
from .services import dispatch
from .status import ACTIVE, Status, transition
from .uploads import UploadError, predictions_location

logger = logging.getLogger(__name__)




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
                .select_related("phase__dataset_link__dataset")
                .get(pk=submission_pk)
            )
        except OperationalError:  # the lock is held: a live duplicate delivery is scoring it
            return "another worker is scoring it"
        if submission.status != Status.SCORING:
            return f"nothing to do: {submission.status}"
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


#: Statuses in which a submission waits for a worker: the claim (queued) or the scoring transaction (scoring).
#: `running` belongs to algorithm runs, whose own lease and recovery live in spinebench.algorithms.
WAITING_FOR_A_WORKER = (Status.QUEUED, Status.SCORING)


@shared_task(name="spinebench.submissions.tasks.sweep_stale_submissions")
def sweep_stale_submissions() -> dict[str, int]:
    """Requeue submissions whose lease expired: `queued` or `scoring` with no status change for
    SPINEBENCH_SCORING_LEASE_SECONDS and no transaction working on them (a live scorer holds the row lock on
    PostgreSQL, or SQLite's write lock, for the whole scoring). Their worker died and, on the embedded broker, its
    message with it. A submission left in `scoring` more than SPINEBENCH_MAX_REQUEUES times is failed with the
    reason instead, so a job that kills its worker cannot loop; the time-limit sweep bounds the rest."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS)
    outcome = {"requeued": 0, "failed": 0}
    stale = Submission.objects.filter(status__in=WAITING_FOR_A_WORKER, status_changed_at__lt=cutoff)
    for pk in stale.values_list("pk", flat=True):
        try:
            with transaction.atomic():
                submission = (
                    Submission.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("phase").filter(pk=pk).first()
                )
                if submission is None or submission.status not in WAITING_FOR_A_WORKER:
                    continue
                if submission.status_changed_at >= cutoff:
                    continue
                if submission.status == Status.QUEUED:
                    # Its message was lost, or it still waits behind a long queue: send it again (a duplicate is
                    # harmless) and renew the lease. Never failed here: waiting is not failing (the phase's time
                    # limit bounds it).
                    submission.status_changed_at = now
                    submission.save(update_fields=["status_changed_at"])
                    dispatch(submission)
                    logger.warning("submission %s sent to its queue again by the lease sweep", pk)
                    outcome["requeued"] += 1
                    continue
                # scoring: a worker took it and died inside the scoring transaction.
                count = note_requeue(kind="submission", object_id=pk, now=now)
                if count > settings.SPINEBENCH_MAX_REQUEUES:
                    submission.finished_at = now
                    submission.save(update_fields=["finished_at"])
                    transition(submission, Status.FAILED, error=(
                        f"Processing stopped {count} times without finishing (its worker was lost each time); "
                        "the submission was failed instead of being retried again. Please contact the organizers."))
                    logger.warning("submission %s failed by the lease sweep after %s requeues", pk, count - 1)
                    outcome["failed"] += 1
                    continue
                transition(submission, Status.QUEUED)
                dispatch(submission)
                logger.warning("submission %s requeued by the lease sweep (%s)", pk, count)
                outcome["requeued"] += 1
        except OperationalError:  # SQLite: a live scorer holds the write lock past the busy timeout; it is alive
            logger.info("submission %s is being worked on; the lease sweep leaves it", pk)
    return outcome
