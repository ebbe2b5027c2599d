"""Who may see what: one place for the pages and the API."""

from __future__ import annotations

from django.db.models import Q

from .models import Challenge, Phase


def visible_challenges(user):
    if user and user.is_authenticated and user.is_superuser:
        return Challenge.objects.all()
    if user and user.is_authenticated:
        return Challenge.objects.filter(Q(is_public=True) | Q(organizers=user)).distinct()
    return Challenge.objects.filter(is_public=True)


def visible_phases(challenge: Challenge, user):
    phases = challenge.phases.all()
    return phases if challenge.is_organizer(user) else phases.filter(is_public=True)


def can_view_phase(phase: Phase, user) -> bool:
    challenge = phase.challenge
    return challenge.is_organizer(user) or (challenge.is_public and phase.is_public)


def can_view_submission(submission, user) -> bool:
    """The creator and organizers always; anyone when it is on a public leaderboard."""
    phase = submission.phase
    if phase.challenge.is_organizer(user):
        return True
    if user and user.is_authenticated and submission.creator_id == user.pk:
        return True
    evaluation = getattr(submission, "evaluation", None)
    return (
        can_view_phase(phase, user) and evaluation is not None and evaluation.published and evaluation.rank is not None
    )


def can_see_private_details(submission, user) -> bool:
    """Error message, comment and per-case results (when the phase hides them) are for the creator and organizers."""
    if submission.phase.challenge.is_organizer(user):
        return True
    return bool(user and user.is_authenticated and submission.creator_id == user.pk)


def can_see_case_results(submission, user) -> bool:
    return submission.phase.challenge.is_organizer(user) or (
        submission.phase.show_case_results and can_view_submission(submission, user)
    )


def can_download_dataset(dataset, user) -> bool:
    """Training splits only (labels included), for approved participants and organizers of its challenge."""
    if dataset.is_hidden or dataset.challenge is None:
        return False
    return dataset.challenge.is_participant(user)



def can_download_phase_inputs(phase: Phase, user) -> bool:
    """The inputs (never the labels) of the cases a CSV phase scores, for its challenge's approved participants and
    organizers: one cannot predict a test set without its images. Algorithm phases keep their inputs inside the
    sandbox."""
    if phase.dataset is None or phase.submission_kind != Phase.SubmissionKind.CSV or not can_view_phase(phase, user):
        return False
    return phase.challenge.is_participant(user)  # organizers count as participants


def phase_labels_public(phase: Phase) -> bool:
    """The phase shows per-case results and scores against a split whose labels participants already have."""
    dataset = phase.dataset
    return phase.show_case_results and dataset is not None and not dataset.is_hidden


def can_see_ground_truth_plots(submission, user) -> bool:
    """Figures drawn from the scoring set's labels case by case (Bland-Altman points, the steps of a ROC curve, which
    read against one's own scores give every case's label): organizers always; anyone else who may see the
    submission only on a phase whose labels are public. Never for a hidden test set."""
    return submission.phase.challenge.is_organizer(user) or (
        phase_labels_public(submission.phase) and can_view_submission(submission, user)
    )


def can_see_phase_ground_truth_plots(phase: Phase, user) -> bool:
    """The same rule for figures of a whole leaderboard (ROC overlay of the top submissions)."""
    return phase.challenge.is_organizer(user) or (phase_labels_public(phase) and can_view_phase(phase, user))
