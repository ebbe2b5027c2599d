"""What a challenge's organizers do to a submission besides cancelling it (services.cancel_submission): hide it
from the leaderboard with a reason shown to the submitter, restore it, or run its upload again as a new submission.
Each one is reported to the audit trail; the leaderboard is ranked again in the same transaction."""

from __future__ import annotations

from django.core.files import File
from django.db import transaction

from spinebench.challenges.signals import ranking_changed, report_organizer_action
from spinebench.uploads.services import challenge_account_key, store_upload

from .models import Submission, upload_suffix
from .services import _file_field, dispatch, upload_kind
from .status import Status, transition


class ModerationRefused(Exception):
    """The action does not apply to this submission; `field` names the input at fault (for field-keyed errors)."""

    def __init__(self, message: str, *, field: str = "submission"):
        super().__init__(message)
        self.field = field


def hide_submission(*, submission: Submission, reason: str, actor) -> Submission:
    """Take a submission off its phase's leaderboard; `reason` (required) is shown to the submitter."""
    reason = reason.strip()
    if not reason:
        raise ModerationRefused("Say why the submission is hidden: the submitter sees the reason.", field="reason")
    return _set_hidden(submission=submission, hidden=True, reason=reason[:500], actor=actor)


def restore_submission(*, submission: Submission, actor) -> Submission:
    """Put a hidden submission back on the leaderboard (a no-op for one that is not hidden)."""
    return _set_hidden(submission=submission, hidden=False, reason="", actor=actor)


def _set_hidden(*, submission: Submission, hidden: bool, reason: str, actor) -> Submission:
    with transaction.atomic():
        locked = Submission.objects.select_for_update().select_related("phase__challenge").get(pk=submission.pk)
        if locked.is_baseline:
            raise ModerationRefused("Baseline runs are ranked by the platform's own rules; they cannot be hidden.")
        if locked.hidden_from_leaderboard == hidden and locked.hidden_reason == reason:
            return locked
        before = [locked.hidden_from_leaderboard, locked.hidden_reason]
        locked.hidden_from_leaderboard, locked.hidden_reason = hidden, reason
        locked.save(update_fields=["hidden_from_leaderboard", "hidden_reason"])
        report_organizer_action(
            challenge=locked.phase.challenge,
            actor=actor,
            action="submission.hide" if hidden else "submission.restore",
            target=f"submission {locked.pk}",
            changes={"hidden_from_leaderboard": [before[0], hidden], "hidden_reason": [before[1], reason]},
            note=reason,
        )
        ranking_changed.send(sender=Submission, phase_pk=locked.phase_id)
    return locked


def rerun_submission(*, submission: Submission, actor) -> Submission:
    """Run a finished submission's upload again as a new submission of the same participant (`rerun_of` names the
    original; it does not count against their limit). The file is copied (charged to the challenge's storage), so
    either submission can be deleted alone."""
    with transaction.atomic():
        original = Submission.objects.select_for_update().select_related("phase__challenge").get(pk=submission.pk)
        if original.is_active:
            raise ModerationRefused(f"Submission {original.pk} is still {original.status}; re-run it once it ended.")
        if original.is_baseline:
            raise ModerationRefused("Baseline runs are started from the baselines page, not re-run.")
        phase = original.phase
        stored_file = getattr(original, _file_field(phase))
        if not stored_file.name:
            raise ModerationRefused(f"Submission {original.pk} has no stored upload to run again.")
        rerun = Submission.objects.create(
            phase=phase, creator=original.creator, comment=original.comment, rerun_of=original,
            upload_size=original.upload_size,
        )
        transition(rerun, Status.VALIDATING)
        suffix = upload_suffix(stored_file.name)
        with stored_file.open("rb") as handle:
            stored = store_upload(
                upload=File(handle, name=f"rerun-of-{original.pk}{suffix}"),
                account_key=challenge_account_key(phase.challenge_id), owner=actor, kind=upload_kind(phase),
                folder=f"submissions/{phase.pk}", suffix=suffix,
            )
        getattr(rerun, _file_field(phase)).name = stored.storage_name
        rerun.save(update_fields=[_file_field(phase)])
        transition(rerun, Status.QUEUED)
        dispatch(rerun)
        report_organizer_action(
            challenge=phase.challenge, actor=actor, action="submission.rerun",
            target=f"submission {original.pk}", note=f"re-run as submission {rerun.pk}",
        )
    return rerun
