"""Whether a user may read the scores and leaderboard positions of a phase's submissions on the dashboard and in its
API: the one place that decides it, so that a blind phase (scores withheld until the reveal) changes this function
only."""

from __future__ import annotations

from spinebench.challenges.models import Phase

from .challenges import can_view_phase
from .evaluation import can_see_scores


def scores_visible(phase: Phase, user) -> bool:
    """Scores and positions show wherever the phase's leaderboard shows, except on a blind phase before its reveal
    (its organizers only)."""
    return can_view_phase(phase, user) and can_see_scores(phase, user)
