"""Organizers' control of scoring: cancelling a submission, re-scoring a phase, the submission monitor and its
actions (re-run, hide from and restore to the leaderboard)."""

from __future__ import annotations

from spinebench.challenges.models import Challenge, Phase


def can_see_scores(phase: Phase, user) -> bool:
    """Scores, ranks and everything drawn from them (leaderboards, exports, statistics, figures, per-case results):
    everyone who sees the phase, except on a blind phase not revealed yet, where only its organizers do."""
    return not phase.scores_hidden or phase.challenge.is_organizer(user)


def can_see_private_part(phase: Phase, user) -> bool:
    """A split phase's private part (its final leaderboard: scores, ranks, statistics, history and the count of its
    entries): its organizers, and once they revealed it, everyone who sees the phase's scores. Per-case metrics of
    the private cases never reach anyone else, not even after the reveal."""
    if not phase.is_split:
        return False
    return phase.scores_revealed_at is not None or phase.challenge.is_organizer(user)


def can_reveal_scores(phase: Phase, user) -> bool:
    return phase.challenge.is_organizer(user)


def can_cancel_submission(submission, user) -> bool:
    """The submitter, and the organizers of its challenge (site operators count as organizers everywhere)."""
    if submission.phase.challenge.is_organizer(user):
        return True
    return bool(user and user.is_authenticated and submission.creator_id == user.pk)


def can_rescore_phase(phase: Phase, user) -> bool:
    return phase.challenge.is_organizer(user)


def can_monitor_submissions(challenge: Challenge, user) -> bool:
    """The submission monitor of a challenge: every submission of every phase (hidden ones too), with logs."""
    return challenge.is_organizer(user)


def can_moderate_submission(submission, user) -> bool:
    """Re-run a submission, hide it from the leaderboard or restore it: the challenge's organizers."""
    return submission.phase.challenge.is_organizer(user)


def can_manage_phase_evaluation(phase: Phase, user) -> bool:
    """Evaluation images and metric declarations of a phase: only the challenge's organizers (and site operators) see
    and change them; the runs' errors and logs may quote the ground truth, so nobody else reads them."""
    return phase.challenge.is_organizer(user)
