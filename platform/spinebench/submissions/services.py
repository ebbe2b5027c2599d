"""Creating submissions (participants and baselines) with the per-participant limit enforced race-free, and
dispatching their processing after the transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from spinebench.challenges.models import Challenge, Phase, Registration

from .models import Submission
from .status import COUNTED, Status, transition
from .uploads import UploadError, check_predictions_csv, check_predictions_zip, check_size


class SubmissionRefused(Exception):
    """The submission was not accepted (closed phase, not registered, limit reached); the message says why."""

    def __init__(self, message: str, *, code: str = "refused"):
        super().__init__(message)
        self.code = code


def check_can_submit(*, phase: Phase, user) -> None:
    challenge = phase.challenge
    if not (user and user.is_authenticated):
        raise SubmissionRefused("Log in to submit.", code="not_authenticated")
    if not challenge.is_participant(user):
        raise SubmissionRefused(
            f"You are not an approved participant of {challenge.title}; register for the challenge first.",
            code="not_participant",
        )
    if not (phase.is_public or challenge.is_organizer(user)):
        raise SubmissionRefused("This phase is not open to participants.", code="hidden")
    if not phase.is_open():
        raise SubmissionRefused(f"Phase {phase.title} is not accepting submissions now.", code="closed")


def submissions_in_window(*, phase: Phase, user, now=None) -> int:
    now = now or timezone.now()
    return Submission.objects.filter(
        phase=phase, creator=user, status__in=COUNTED, created__gte=now - phase.submission_limit_period
    ).count()


def _lock_participant(challenge: Challenge, user) -> None:
    """Serialise one participant's submissions to one challenge: lock their registration row (PostgreSQL
    SELECT ... FOR UPDATE; SQLite serialises writers by itself). Organizers get an approved row on first use."""
    registration, _ = Registration.objects.get_or_create(
        challenge=challenge, user=user, defaults={"status": Registration.Status.APPROVED}
    )
    Registration.objects.select_for_update().get(pk=registration.pk)


def create_submission(*, phase: Phase, user, upload, comment: str = "") -> Submission:
    """Accept an upload (a predictions CSV, or an algorithm archive for an algorithm phase) or raise
    SubmissionRefused. Problems with the file itself give a submission in `failed` with the reason (it does not count
    against the limit); an accepted one is queued and dispatched when the transaction commits."""
    check_can_submit(phase=phase, user=user)
    with transaction.atomic():
        _lock_participant(phase.challenge, user)
        if phase.submission_limit is not None:
            used = submissions_in_window(phase=phase, user=user)
            if used >= phase.submission_limit:
                raise SubmissionRefused(
                    f"Submission limit reached: {used} of {phase.submission_limit} submissions in the last "
                    f"{phase.submission_limit_period_hours} h (failed and cancelled ones do not count).",
                    code="limit",
                )
        submission = Submission(phase=phase, creator=user, comment=comment[:500], upload_size=upload.size or 0)
        field = "algorithm_archive" if phase.submission_kind == Phase.SubmissionKind.ALGORITHM else "predictions_file"
        getattr(submission, field).save(upload.name or "upload", upload, save=False)
        submission.save()
        _validate_and_dispatch(submission, upload)
    return submission


def _validate_and_dispatch(submission: Submission, upload) -> None:
    phase = submission.phase
    transition(submission, Status.VALIDATING)
    try:
        if phase.submission_kind == Phase.SubmissionKind.ALGORITHM:
            check_size(upload.size or 0, limit=phase.max_upload_bytes, name=Path(upload.name or "upload").name)
        elif phase.takes_csv:
            check_predictions_csv(upload, limit=phase.max_upload_bytes)
        else:
            check_predictions_zip(upload, limit=phase.max_upload_bytes, unpacked_limit=phase.output_limit_mb * 1024**2)
    except UploadError as error:
        submission.finished_at = timezone.now()
        submission.save(update_fields=["finished_at"])
        transition(submission, Status.FAILED, error=str(error))
        return
    transition(submission, Status.QUEUED)
    dispatch(submission)


#: submission kind -> start(submission_pk): queues the task that processes a submission of that kind. Registered at
#: app-ready time by the app that owns the task (this app's scoring task for predictions; the algorithms app for
#: containers), so this service never imports a task module.
_PIPELINES: dict[str, Callable[[int], object]] = {}


def register_pipeline(kind: str, start: Callable[[int], object]) -> None:
    _PIPELINES[kind] = start


def dispatch(submission: Submission) -> None:
    """Start processing after commit: the CSV scoring task, or the algorithm pipeline (spinebench.algorithms)."""
    pk, kind = submission.pk, submission.phase.submission_kind
    if kind not in _PIPELINES:
        raise RuntimeError(f"no pipeline registered for submissions of kind {kind!r}")
    start = _PIPELINES[kind]
    transaction.on_commit(lambda: start(pk))


def submit_baseline(*, phase: Phase, method: str, predictions_path) -> Submission:
    """Queue a baseline's predictions (a CSV file or a per-case folder) for scoring like any submission; it appears
    on the leaderboard under the method's name with a baseline badge. No limit applies."""
    predictions_path = Path(predictions_path)
    with transaction.atomic():
        submission = Submission(phase=phase, is_baseline=True, baseline_method=method, comment=f"baseline {method}")
        if predictions_path.is_dir():
            archive = _zip_folder(predictions_path)
            with archive.open("rb") as handle:
                submission.predictions_file.save(f"{method}.zip", File(handle), save=False)
            archive.unlink()
        else:
            with predictions_path.open("rb") as handle:
                submission.predictions_file.save(predictions_path.name, File(handle), save=False)
        submission.upload_size = submission.predictions_file.size
        submission.save()
        transition(submission, Status.VALIDATING)
        transition(submission, Status.QUEUED)
        dispatch(submission)
    return submission


def _zip_folder(folder: Path) -> Path:
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="spinebench-baseline-")) / "predictions"
    return Path(shutil.make_archive(str(base), "zip", root_dir=folder))


def cancel_submission(submission: Submission) -> bool:
    """Cancel a submission that has not finished; returns False when it already had."""
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        if not locked.is_active:
            return False
        locked.finished_at = timezone.now()
        locked.save(update_fields=["finished_at"])
        transition(locked, Status.CANCELLED, error="Cancelled.")
    submission.refresh_from_db()
    return True

