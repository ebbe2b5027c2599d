"""Creating submissions (participants and baselines) with the per-participant limit (quota.submission_quota) enforced
race-free, and dispatching their processing after the transaction commits."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.challenges.signals import report_organizer_action
from spinebench.challenges.terms import has_accepted_current_terms
from spinebench.teams.models import Team
from spinebench.teams.services import team_of
from spinebench.uploads.chunked import SessionError
from spinebench.uploads.chunked import claim as claim_upload
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

from .method_cards import MethodCard
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


def _lock_participant(challenge: Challenge, user) -> Team | None:
    """Serialise one participant's submissions to one challenge: lock their registration row, then their team's
    row when they have one, so that the members of a team submit one after the other (PostgreSQL
    SELECT ... FOR UPDATE; SQLite serialises writers by itself). Organizers get an approved row on first use. The
    same order as spinebench.teams.services takes them in when the user joins a team. Returns the team."""
    registration, _ = Registration.objects.get_or_create(
        challenge=challenge, user=user, defaults={"status": Registration.Status.APPROVED}
    )
    Registration.objects.select_for_update().get(pk=registration.pk)
    team = team_of(challenge=challenge, user=user)
    return Team.objects.select_for_update().get(pk=team.pk) if team is not None else None


def create_submission(
    *, phase: Phase, user, upload=None, upload_session=None, comment: str = "", method_card: MethodCard | None = None
) -> Submission:
    """Accept an upload (a predictions CSV or zip, or an algorithm archive for an algorithm phase) or raise
    SubmissionRefused. The file comes as `upload` (streamed in with the request) or as `upload_session`, the id of
    the submitter's finalised chunked upload (spinebench.uploads.chunked), whose stored file is used as it is.
    Problems with the file itself give a submission in `failed` with the reason (it does not count against the
    limit, and its file is not kept); an accepted file is stored through spinebench.uploads (charged to the
    participant's storage quota) and the submission queued, dispatched when the transaction commits."""
    check_can_submit(phase=phase, user=user)
    method_card = method_card or MethodCard()
    method_card.validate()  # field-keyed ValidationError before anything is stored
    if (upload is None) == (upload_session is None):
        raise SubmissionRefused("Send either a file or the id of a finished upload session, not both.",
                                code="bad_upload")
    account_key = user_account_key(user)
    if upload is not None:
        try:
            check_upload_size(upload, limit=site_limit())  # over the phase's own limit: a failed submission below
            check_quota(account_key=account_key, size=upload.size or 0)
        except UploadRefused as refusal:
            raise SubmissionRefused(str(refusal), code=refusal.code) from None
    stored_name = ""
    try:
        with transaction.atomic():
            team = _lock_participant(phase.challenge, user)
            _check_submission_limit(phase, user)
            claimed = None if upload_session is None else _claim(phase, user, upload_session)
            if claimed is not None:
                upload = File(default_storage.open(claimed.storage_name), name=claimed.original_name or "upload")
            submission = Submission(
                phase=phase, creator=user, team=team, comment=comment[:500], upload_size=upload.size or 0,
                **method_card.as_fields(),
            )
            submission.save()
            transition(submission, Status.VALIDATING)
            try:
                problem = _validation_problem(phase, upload)
            finally:
                if claimed is not None:
                    upload.close()
            if problem is not None:
                submission.finished_at = timezone.now()
                submission.save(update_fields=["finished_at"])
                transition(submission, Status.FAILED, error=problem)
                if claimed is not None:
                    release_unreferenced(claimed.storage_name)
                return submission
            if claimed is None:
                claimed = store_upload(
                    upload=upload, account_key=account_key, owner=user, kind=upload_kind(phase),
                    folder=f"submissions/{phase.pk}", suffix=upload_suffix(upload.name or ""),
                )
                stored_name = claimed.storage_name
            getattr(submission, _file_field(phase)).name = claimed.storage_name
            submission.save(update_fields=[_file_field(phase)])
            transition(submission, Status.QUEUED)
            dispatch(submission)
    except UploadRefused as refusal:  # the quota, checked again under the account lock
        raise SubmissionRefused(str(refusal), code=refusal.code) from None
    except BaseException:
        discard_file(stored_name)  # the transaction rolled back: its record is gone, the file must go too
        raise
    return submission


def _claim(phase: Phase, user, upload_session) -> StoredUpload:
    """The stored file of the submitter's finished upload session, of the kind this phase takes."""
    try:
        return claim_upload(session_id=upload_session, owner=user, kinds={upload_kind(phase)})
    except SessionError as error:
        raise SubmissionRefused(str(error), code="bad_upload") from None


def release_unreferenced(storage_name: str) -> None:
    """Delete a stored submission file (after commit) unless a submission still uses it: a chunked upload stored
    once may back several submissions of the same account."""
    if not storage_name:
        return
    in_use = Submission.objects.filter(Q(predictions_file=storage_name) | Q(algorithm_archive=storage_name))
    if not in_use.exists():
        transaction.on_commit(lambda: discard_file(storage_name))


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
        whose = " by your team" if team_of(challenge=phase.challenge, user=user) else ""
        raise SubmissionRefused(
            f"Submission limit reached: {quota.used} of {quota.limit} submissions{whose} in the last "
            f"{quota.period_hours} h (failed and cancelled ones do not count). The next one frees up at "
            f"{frees_at}.",
            code="limit",
        )


def _file_field(phase: Phase) -> str:
    return "algorithm_archive" if phase.submission_kind == Phase.SubmissionKind.ALGORITHM else "predictions_file"


def upload_kind(phase: Phase) -> str:
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


#: The pipeline of predictions submissions to a custom phase: scoring runs the phase's evaluation image, so it goes
#: to a container worker (registered by spinebench.algorithms).
CUSTOM_EVALUATION_PIPELINE = "custom-evaluation"


def dispatch(submission: Submission) -> None:
    """Start processing after commit: the CSV scoring task, the algorithm pipeline (spinebench.algorithms), or the
    scoring of a custom phase's predictions on a container worker."""
    from evaluators.contract import CUSTOM_TASK

    pk, kind = submission.pk, submission.phase.submission_kind
    if kind == Phase.SubmissionKind.CSV and submission.phase.task == CUSTOM_TASK:
        kind = CUSTOM_EVALUATION_PIPELINE
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


class CancelRefused(Exception):
    """A submission that already finished (succeeded or failed) cannot be cancelled; the message says so."""


def cancel_submission(submission: Submission, *, reason: str = "", actor=None) -> bool:
    """Cancel a submission that has not finished: final status `cancelled`, with the reason in its error message
    (shown to the submitter). A running algorithm container is stopped when this commits (spinebench.algorithms'
    receiver of the status change; its runner also polls the status). Idempotent: returns False when the submission
    was already cancelled. Raises CancelRefused for a succeeded or failed one. When `actor` is not the submitter
    (an organizer of the challenge), the cancel goes to the audit trail with the reason."""
    with transaction.atomic():
        locked = Submission.objects.select_for_update().select_related("phase__challenge").get(pk=submission.pk)
        if locked.status == Status.CANCELLED:
            return False
        if not locked.is_active:
            raise CancelRefused(f"Submission {locked.pk} has already {locked.status}; only an unfinished submission "
                                "can be cancelled.")
        by_organizer = actor is not None and actor.pk != locked.creator_id
        message = "Cancelled by an organizer" if by_organizer else "Cancelled"
        locked.finished_at = timezone.now()
        locked.save(update_fields=["finished_at"])
        transition(locked, Status.CANCELLED, error=f"{message}: {reason}" if reason else f"{message}.")
        if by_organizer:
            report_organizer_action(
                challenge=locked.phase.challenge, actor=actor, action="submission.cancel",
                target=f"submission {locked.pk}", changes={"status": [submission.status, Status.CANCELLED]},
                note=reason,
            )
    submission.refresh_from_db()
    return True
