"""Re-scoring a phase as one background job, switched atomically.

`start_rescore` (organizers, through a page or the API) creates a RescoreJob under the phase's row lock and starts
it after commit through the starter the app registered. `run_rescore` (the Celery task) evaluates every succeeded
submission of the phase again from its stored predictions, one committed StagedScore per submission (so the page's
progress bar moves and a redelivered task goes on where the last one stopped), then, holding the phase's row lock,
switches the whole phase in one transaction: the replaced evaluations go to the history (PastEvaluation), the staged
scores become the current evaluations under version `to_version`, the phase moves to that version and its
leaderboard is ranked again (a snapshot naming the version). A submission that cannot be evaluated fails the job
with its id and the reason; nothing of the phase changes then. Submissions scored while the job ran are evaluated
again before the switch, under the same lock, so no old-version score stays on the new leaderboard.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from spinebench.challenges.models import Phase
from spinebench.challenges.signals import ranking_changed, report_organizer_action
from spinebench.submissions.models import Evaluation, Part, PrivateEvaluation, Submission
from spinebench.submissions.scoring import evaluate_predictions, stored_metrics
from spinebench.submissions.status import ACTIVE, Status, transition
from spinebench.submissions.uploads import UploadError, predictions_location

from .versions import PastEvaluation, RescoreJob, StagedScore

logger = logging.getLogger(__name__)

#: Shown when a submission cannot be evaluated for a reason that is not in its predictions (the detail, which may
#: quote the ground truth's files, goes to the log).
PLATFORM_PROBLEM = "the evaluator failed on the platform's side (see the scoring worker's log)"


class RescoreRefused(Exception):
    """A re-score that cannot start; `field` names what is wrong (for field-keyed API errors)."""

    def __init__(self, message: str, *, field: str = "phase"):
        super().__init__(message)
        self.field = field


PredictionsSource = Callable[[Submission], AbstractContextManager[Path]]

#: Where the stored predictions of a submission without a predictions file are, per phase submission kind (the
#: algorithms app registers its containers' output folder at ready time).
_predictions_sources: dict[str, PredictionsSource] = {}
_starter: Callable[[int], object] | None = None


def register_predictions_source(kind: str, locate: PredictionsSource) -> None:
    _predictions_sources[kind] = locate


def register_rescore_starter(start: Callable[[int], object]) -> None:
    """The app's ready() registers the Celery task here, so that this service never imports the task layer."""
    global _starter
    _starter = start


def _start(job_pk: int) -> None:
    if _starter is None:
        raise RuntimeError("no re-score task registered (spinebench.evaluation is not ready)")
    _starter(job_pk)


def rescored_submissions(phase_pk: int) -> QuerySet[Submission]:
    """What a re-score evaluates again: every succeeded submission of the phase (published or not, baselines too)."""
    return Submission.objects.filter(phase_id=phase_pk, status=Status.SUCCEEDED, evaluation__isnull=False)


def start_rescore(*, phase: Phase, actor, note: str = "") -> RescoreJob:
    """Create and start (after commit) a re-score of `phase`; refused while another one of the phase is active or
    when the phase has no dataset to score against. Reported to the audit trail."""
    with transaction.atomic():
        locked = Phase.objects.select_for_update().select_related("challenge").get(pk=phase.pk)
        active = RescoreJob.objects.select_for_update().filter(phase=locked, status__in=ACTIVE).first()
        if active is not None and _lost(active):
            _give_up(active)
            active = None
        if active is not None:
            raise RescoreRefused(
                f"Re-score job {active.pk} of this phase is still {active.status}; wait for it to end."
            )
        if locked.dataset is None:
            raise RescoreRefused("This phase has no dataset to score against.")
        job = RescoreJob.objects.create(
            phase=locked,
            requested_by=actor if getattr(actor, "pk", None) else None,
            note=note,
            from_version=locked.evaluation_version,
            to_version=locked.evaluation_version + 1,
            total=rescored_submissions(locked.pk).count(),
        )
        transition(job, Status.VALIDATING)
        transition(job, Status.QUEUED)
        report_organizer_action(
            challenge=locked.challenge,
            actor=actor,
            action="phase.rescore",
            target=f"phase {locked.pk} ({locked.slug})",
            changes={"evaluation_version": [job.from_version, job.to_version]},
            note=note,
        )
        job_pk = job.pk
        transaction.on_commit(lambda: _start(job_pk))
    return job


def _lost(job: RescoreJob) -> bool:
    """No sign of life for longer than the scoring lease: its worker died (the embedded broker never redelivers)."""
    return timezone.now() - job.progressed_at > timedelta(seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS)


def _give_up(job: RescoreJob) -> None:
    StagedScore.objects.filter(job=job).delete()
    job.finished_at = timezone.now()
    job.save(update_fields=["finished_at"])
    transition(
        job,
        Status.FAILED,
        error=f"Its worker stopped without finishing (no progress since {job.progressed_at:%Y-%m-%d %H:%M}). Nothing "
        f"changed: the leaderboard still shows evaluation version {job.from_version}.",
    )


def run_rescore(*, job_pk: int) -> str:
    """The job's work (the Celery task calls this): claim, evaluate what is not staged yet, switch. Idempotent."""
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().filter(pk=job_pk).first()
        if job is None:
            return "gone"
        if job.status == Status.QUEUED:
            job.started_at = job.progressed_at = timezone.now()
            job.save(update_fields=["started_at", "progressed_at"])
            transition(job, Status.RUNNING)
        elif job.status != Status.RUNNING:
            return f"nothing to do: {job.status}"
    while True:
        for submission in _unstaged(job):
            if not _stage(job, submission):
                return "failed"
        if _switch(job_pk):
            return "switched"
        # Submissions were scored while this round ran: evaluate them too, then try the switch again.


def _unstaged(job: RescoreJob) -> list[Submission]:
    staged = StagedScore.objects.filter(job=job).values("submission_id")
    pending = rescored_submissions(job.phase_id).exclude(pk__in=staged).select_related(
        "phase__dataset_link__dataset", "creator"
    )
    found = list(pending.order_by("pk"))
    RescoreJob.objects.filter(pk=job.pk).update(total=StagedScore.objects.filter(job=job).count() + len(found))
    return found


def _stage(job: RescoreJob, submission: Submission) -> bool:
    """Evaluate one submission into a StagedScore (committed at once); on failure end the job and say why."""
    started = time.monotonic()
    try:
        with _predictions(submission) as path:
            parts = evaluate_predictions(submission, path)
    except Exception as error:  # noqa: BLE001 - any failure ends the job with the submission named
        _fail(job, submission, _reason(submission, error))
        return False
    shown = stored_metrics(parts.get(Part.PUBLIC) or parts[Part.ALL])
    private = stored_metrics(parts[Part.PRIVATE]) if Part.PRIVATE in parts else {"metrics": None, "curves": {}}
    with transaction.atomic():
        StagedScore.objects.update_or_create(
            job=job,
            submission=submission,
            defaults={
                **shown,
                "private_metrics": private["metrics"],
                "private_curves": private["curves"],
                "duration_seconds": time.monotonic() - started,
            },
        )
        RescoreJob.objects.filter(pk=job.pk).update(
            scored=StagedScore.objects.filter(job=job).count(), progressed_at=timezone.now()
        )
    return True


def _predictions(submission: Submission) -> AbstractContextManager[Path]:
    if submission.predictions_file.name:
        return predictions_location(submission)
    locate = _predictions_sources.get(submission.phase.submission_kind)
    if locate is None:
        raise UploadError("its predictions are no longer stored")
    return locate(submission)


def _reason(submission: Submission, error: Exception) -> str:
    from evaluators.errors import PredictionError

    if isinstance(error, (PredictionError, UploadError)):
        return str(error)
    logger.exception("re-scoring submission %s failed", submission.pk)
    return PLATFORM_PROBLEM


def _fail(job: RescoreJob, submission: Submission, reason: str) -> None:
    with transaction.atomic():
        locked = RescoreJob.objects.select_for_update().get(pk=job.pk)
        if locked.status != Status.RUNNING:
            return
        StagedScore.objects.filter(job=locked).delete()
        locked.failed_submission = submission
        locked.finished_at = timezone.now()
        locked.save(update_fields=["failed_submission", "finished_at"])
        transition(
            locked,
            Status.FAILED,
            error=f"Submission {submission.pk} ({submission.participant_name}) could not be scored again: {reason}. "
            f"Nothing changed: the leaderboard still shows evaluation version {locked.from_version}.",
        )


def _past(evaluation: Evaluation | PrivateEvaluation, *, part: str, job: RescoreJob) -> PastEvaluation:
    return PastEvaluation(
        submission_id=evaluation.submission_id,
        version=evaluation.version,
        part=part,
        metrics=evaluation.metrics,
        curves=evaluation.curves,
        duration_seconds=evaluation.duration_seconds,
        rank=evaluation.rank,
        evaluated=evaluation.created,
        replaced_by=job,
    )


def _switch_private_parts(staged: dict[int, StagedScore], private: dict[int, PrivateEvaluation], *, version: int,
                          now) -> None:
    """The private parts follow their public ones: replaced, created (a phase made split since its last scoring) or
    dropped (a phase no longer split)."""
    kept = []
    for submission_pk, score in staged.items():
        if score.private_metrics is None:
            continue
        evaluation = private.get(submission_pk) or PrivateEvaluation(submission_id=submission_pk)
        evaluation.metrics, evaluation.curves = score.private_metrics, score.private_curves
        evaluation.duration_seconds, evaluation.version, evaluation.created = score.duration_seconds, version, now
        evaluation.save()
        kept.append(submission_pk)
    PrivateEvaluation.objects.filter(submission_id__in=set(private) - set(kept)).delete()


def _switch(job_pk: int) -> bool:
    """Replace the phase's evaluations by the staged scores in one transaction under the phase's row lock; False
    (nothing changed) when a submission was scored meanwhile and must be evaluated first."""
    with transaction.atomic():
        job = RescoreJob.objects.select_for_update().get(pk=job_pk)
        phase = Phase.objects.select_for_update().select_related("challenge").get(pk=job.phase_id)
        if job.status != Status.RUNNING:
            return True
        staged_ids = StagedScore.objects.filter(job=job).values("submission_id")
        if rescored_submissions(phase.pk).exclude(pk__in=staged_ids).exists():
            return False
        now = timezone.now()
        staged = {score.submission_id: score for score in StagedScore.objects.filter(job=job)}
        current = list(Evaluation.objects.select_for_update().filter(submission_id__in=staged))
        private = {
            evaluation.submission_id: evaluation
            for evaluation in PrivateEvaluation.objects.select_for_update().filter(submission_id__in=staged)
        }
        PastEvaluation.objects.bulk_create(
            [_past(evaluation, part=evaluation.part, job=job) for evaluation in current]
            + [_past(evaluation, part=Part.PRIVATE, job=job) for evaluation in private.values()]
        )
        for evaluation in current:
            score = staged[evaluation.submission_id]
            evaluation.metrics, evaluation.curves = score.metrics, score.curves
            evaluation.duration_seconds, evaluation.version = score.duration_seconds, job.to_version
            evaluation.part = Part.PUBLIC if score.private_metrics is not None else Part.ALL
            evaluation.created = now
        Evaluation.objects.bulk_update(current, ["metrics", "curves", "duration_seconds", "version", "part", "created"])
        _switch_private_parts(staged, private, version=job.to_version, now=now)
        Phase.objects.filter(pk=phase.pk).update(evaluation_version=job.to_version)
        StagedScore.objects.filter(job=job).delete()
        job.finished_at = now
        job.scored = job.total = len(current)
        job.save(update_fields=["finished_at", "scored", "total"])
        transition(job, Status.SCORING)  # the state machine's way to succeeded: the switch is the job's scoring step
        transition(job, Status.SUCCEEDED, error="")
        ranking_changed.send(sender=RescoreJob, phase_pk=phase.pk)  # the snapshot names the new version
        report_organizer_action(
            challenge=phase.challenge,
            actor=None,
            action="phase.rescored",
            target=f"phase {phase.pk} ({phase.slug})",
            changes={"evaluation_version": [job.from_version, job.to_version]},
            note=f"re-score job {job.pk}: {len(current)} submissions evaluated again",
        )
    return True
