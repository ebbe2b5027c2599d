"""Joining a team after submitting (the rule stated in spinebench.teams.services): the member's earlier submissions
of the challenge that belong to no team move to the team, so they count against the team's limit from then on and
the team's one leaderboard entry is the best (or latest) of all of them. Each phase they touch is ranked again at
once; the snapshots written before keep the member's own entry, so the leaderboard history shows who held the entry
when."""

from __future__ import annotations

from spinebench.challenges.signals import ranking_changed

from .models import Submission
from .status import Status


def move_submissions_to_team(*, team, user) -> int:
    """Move `user`'s team-less submissions of `team`'s challenge to `team`; returns how many moved. Runs inside the
    joining transaction (the team's row is locked)."""
    moved = Submission.objects.filter(
        phase__challenge_id=team.challenge_id, creator=user, team__isnull=True, is_baseline=False
    )
    ranked_phases = set(moved.filter(status=Status.SUCCEEDED).values_list("phase_id", flat=True))
    count = moved.update(team=team)
    for phase_pk in sorted(ranked_phases):
        ranking_changed.send(sender=Submission, phase_pk=phase_pk)
    return count
