"""Submissions: who sees one, its private details, its per-case results and the figures drawn from labels."""

from __future__ import annotations

from spinebench.challenges.models import Phase

from .challenges import can_view_phase, phase_labels_public
from .evaluation import can_see_scores
from .teams import is_team_mates_submission


def can_view_submission(submission, user) -> bool:
    """The creator, their team mates (a submission of their team) and organizers always; anyone when it is on a
    public leaderboard."""
    phase = submission.phase
    if phase.challenge.is_organizer(user):
        return True
    if user and user.is_authenticated and submission.creator_id == user.pk:
        return True
    if is_team_mates_submission(submission, user) and can_view_phase(phase, user):
        return True
    evaluation = getattr(submission, "evaluation", None)
    return (
        can_view_phase(phase, user)
        and can_see_scores(phase, user)  # a blind phase's leaderboard, not revealed yet, shows no one's entry
        and evaluation is not None
        and evaluation.published
        and evaluation.rank is not None
    )


def can_see_private_details(submission, user) -> bool:
    """Error message, comment and per-case results (when the phase hides them) are for the creator and organizers."""
    if submission.phase.challenge.is_organizer(user):
        return True
    return bool(user and user.is_authenticated and submission.creator_id == user.pk)


def can_see_case_results(submission, user) -> bool:
    return submission.phase.challenge.is_organizer(user) or (
        submission.phase.show_case_results
        and can_see_scores(submission.phase, user)
        and can_view_submission(submission, user)
    )


def can_see_ground_truth_plots(submission, user) -> bool:
    """Figures drawn from the scoring set's labels case by case (Bland-Altman points, the steps of a ROC curve, which
    read against one's own scores give every case's label): organizers always; anyone else who may see the
    submission only on a phase whose labels are public. Never for a hidden test set."""
    return submission.phase.challenge.is_organizer(user) or (
        phase_labels_public(submission.phase)
        and can_see_scores(submission.phase, user)
        and can_view_submission(submission, user)
    )


def can_see_phase_ground_truth_plots(phase: Phase, user) -> bool:
    """The same rule for figures of a whole leaderboard (ROC overlay of the top submissions)."""
    return phase.challenge.is_organizer(user) or (
        phase_labels_public(phase) and can_see_scores(phase, user) and can_view_phase(phase, user)
    )


def can_choose_submissions(phase: Phase, user) -> bool:
    """Picking which of one's own succeeded submissions represent one (selection `chosen`): any signed-in user who
    may see the phase; what they may pick is their own submissions only (submissions.selection)."""
    return bool(user and user.is_authenticated) and can_view_phase(phase, user)


def can_compare_submission(submission, user) -> bool:
    """Comparing a submission case by case with another: per-case values against one's own predictions give the
    labels, so the rule of the figures drawn from labels (organizers; others only where the phase's labels are
    public and they may see the submission). The other submission must pass the same rule."""
    return can_view_submission(submission, user) and can_see_ground_truth_plots(submission, user)


def can_edit_method_card(submission, user) -> bool:
    """Name, description and links of a submission's method card: its submitter, and their team mates when it is the
    team's submission (the card describes the team's one leaderboard entry). Not the organizers: they may take a
    submission off the leaderboard, not speak for its authors. Never a baseline's. Allowed after the phase closed
    too: a card changes no score or rank, and the paper it links often appears after the challenge."""
    if submission.is_baseline or not (user and user.is_authenticated):
        return False
    if submission.creator_id == user.pk:
        return True
    return is_team_mates_submission(submission, user) and can_view_phase(submission.phase, user)
