"""Creating submissions (participants and baselines) with the per-participant limit (quota.submission_quota) enforced
race-free, and dispatching their processing after the transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.files import File
from django.db import transaction
from django.utils import timezone

from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.challenges.terms import has_accepted_current_terms
from spinebench.uploads.handlers import site_limit
from spinebench.uploads.limits import UploadRefused
from spinebench.uploads.models import StoredUpload
from spinebench.uploads.services import (
    check_quota,
    check_upload_size,
    store_upload,
    user_account_key,
)
from spinebench.uploads.services import discard as discard_file
from spinebench.workers.services import phase_unserved_message

from .models import Submission, upload_suffix
from .quota import submission_quota
from .status import Status, transition
from .uploads import (
    UploadError,
    check_predictions_csv,
    check_predictions_zip,
    check_size,
    display_name,
    zip_limits,
)


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
    if not has_accepted_current_terms(challenge, user):
        raise SubmissionRefused(
            f"Accept the current terms of {challenge.title} on the challenge page before submitting.", code="terms"
        )
    if not (phase.is_public or challenge.is_organizer(user)):
        raise SubmissionRefused("This phase is not open to participants.", code="hidden")
    if not phase.is_open():
        raise SubmissionRefused(f"Phase {phase.title} is not accepting submissions now.", code="closed")
    if unserved := phase_unserved_message(phase):  # an algorithm upload would wait for a worker that is not there
        raise SubmissionRefused(unserved, code="no_worker")


def _lock_participant(challenge: Challenge, user) -> None:
    """Serialise one participant's submissions to one challenge: lock their registration row (PostgreSQL
    SELECT ... FOR UPDATE; SQLite serialises writers by itself). Organizers get an approved row on first use."""
    registration, _ = Registration.objects.get_or_create(
        challenge=challenge, user=user, defaults={"status": Registration.Status.APPROVED}
    )
    Registration.objects.select_for_update().get(pk=registration.pk)


def create_submission(*, phase: Phase, user, upload, comment: str = "") -> Submission:
    """Accept an upload (a predictions CSV or zip, or an algorithm archive for an algorithm phase) or raise
    SubmissionRefused. Problems with the file itself give a submission in `failed` with the reason (it does not count
    against the limit, and its file is never stored); an accepted file is stored through spinebench.uploads (charged
    to the participant's storage quota) and the submission queued, dispatched when the transaction commits."""
    check_can_submit(phase=phase, user=user)
    account_key = user_account_key(user)
    try:
        check_upload_size(upload, limit=site_limit())  # over the phase's own limit: a failed submission below
        check_quota(account_key=account_key, size=upload.size or 0)
    except UploadRefused as refusal:
        raise SubmissionRefused(str(refusal), code=refusal.code) from None
    stored_name = ""
    try:
        with transaction.atomic():
            _lock_participant(phase.challenge, user)
            _check_submission_limit(phase, user)
            submission = Submission(phase=phase, creator=user, comment=comment[:500], upload_size=upload.size or 0)
            submission.save()
            transition(submission, Status.VALIDATING)
            problem = _validation_problem(phase, upload)
            if problem is not None:
                submission.finished_at = timezone.now()
                submission.save(update_fields=["finished_at"])
                transition(submission, Status.FAILED, error=problem)
                return submission
            stored = store_upload(
                upload=upload, account_key=account_key, owner=user, kind=_upload_kind(phase),
                folder=f"submissions/{phase.pk}", suffix=upload_suffix(upload.name or ""),
            )
            stored_name = stored.storage_name
            getattr(submission, _file_field(phase)).name = stored_name
            submission.save(update_fields=[_file_field(phase)])
            transition(submission, Status.QUEUED)
            dispatch(submission)
    except UploadRefused as refusal:  # the quota, checked again under the account lock
        raise SubmissionRefused(str(refusal), code=refusal.code) from None
    except BaseException:
        discard_file(stored_name)  # the transaction rolled back: its record is gone, the file must go too
        raise
    return submission


def _check_submission_limit(phase: Phase, user) -> None:
    """The one rule of the submission quota service (`quota.py`), applied under the participant's lock."""
    quota = submission_quota(phase=phase, user=user)
    if quota.total_exhausted:
        raise SubmissionRefused(
            f"Submission limit reached: {quota.total_used} of {quota.total_limit} submissions on this phase "
            "(failed and cancelled ones do not count).",
            code="limit",
        )
    if quota.exhausted:
        frees_at = timezone.localtime(quota.next_frees_at).strftime("%Y-%m-%d %H:%M %Z")
        raise SubmissionRefused(
            f"Submission limit reached: {quota.used} of {quota.limit} submissions in the last "
            f"{quota.period_hours} h (failed and cancelled ones do not count). The next one frees up at "
            f"{frees_at}.",
            code="limit",
        )


def _file_field(phase: Phase) -> str:
    return "algorithm_archive" if phase.submission_kind == Phase.SubmissionKind.ALGORITHM else "predictions_file"


def _upload_kind(phase: Phase) -> str:
    if phase.submission_kind == Phase.SubmissionKind.ALGORITHM:
        return StoredUpload.Kind.ALGORITHM_ARCHIVE
    return StoredUpload.Kind.PREDICTIONS_CSV if phase.takes_csv else StoredUpload.Kind.PREDICTIONS_ZIP


def _validation_problem(phase: Phase, upload) -> str | None:
    """Why the quarantined upload cannot be accepted, or None; nothing has been stored yet."""
    try:
        if phase.submission_kind == Phase.SubmissionKind.ALGORITHM:
            check_size(upload.size or 0, limit=phase.max_upload_bytes, name=display_name(upload, "upload"))
        elif phase.takes_csv:
            check_predictions_csv(upload, limit=phase.max_upload_bytes)
        else:
            check_predictions_zip(upload, limit=phase.max_upload_bytes, limits=zip_limits(phase))
    except UploadError as error:
        return str(error)
    return None


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


def submit_baseline(*, phase: Phase, method: str, predictions_path, fallback_share: float | None = None,
                    degenerate_reason: str = "") -> Submission:
    """Queue a baseline's predictions (a CSV file or a per-case folder) for scoring like any submission; it appears
    on the leaderboard under the method's name with a baseline badge, or greyed and unranked when the run is
    degenerate (`degenerate_reason`). No limit applies."""
    predictions_path = Path(predictions_path)
    with transaction.atomic():
        submission = Submission(phase=phase, is_baseline=True, baseline_method=method, comment=f"baseline {method}",
                                fallback_share=fallback_share, degenerate_reason=degenerate_reason)
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

