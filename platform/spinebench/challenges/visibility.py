"""Revealing a blind phase's leaderboard, or a split phase's final (private part) leaderboard: one audited action
after which those scores and ranks reach everyone who sees the phase (the rules themselves are
spinebench.access.can_see_scores and can_see_private_part)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from .models import Phase
from .signals import report_organizer_action


class RevealRefused(Exception):
    """The phase is neither blind nor split, or already revealed; the message says which."""


def reveal_scores(*, phase: Phase, actor) -> Phase:
    with transaction.atomic():
        locked = Phase.objects.select_for_update().select_related("challenge").get(pk=phase.pk)
        if locked.score_visibility not in (Phase.ScoreVisibility.BLIND, Phase.ScoreVisibility.SPLIT):
            raise RevealRefused("This phase's scores are public already: there is nothing to reveal.")
        if locked.scores_revealed_at is not None:
            raise RevealRefused(f"This phase's leaderboard was revealed at {locked.scores_revealed_at:%Y-%m-%d %H:%M}.")
        locked.scores_revealed_at = timezone.now()
        Phase.objects.filter(pk=locked.pk).update(scores_revealed_at=locked.scores_revealed_at)
        report_organizer_action(
            challenge=locked.challenge,
            actor=actor,
            action="leaderboard.reveal",
            target=f"phase {locked.pk} ({locked.slug})",
            changes={"scores_revealed_at": [None, locked.scores_revealed_at.isoformat()]},
        )
    return locked
