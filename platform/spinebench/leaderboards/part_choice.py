"""Which leaderboard of a phase a request asks for with `?part=`: `live` (default; the public part of a split
phase) or `final` (a split phase's private part, for whoever spinebench.access.can_see_private_part allows). The
pages, the exports and the API ask here so that they refuse the same requests."""

from __future__ import annotations

from spinebench.access import can_see_private_part
from spinebench.challenges.models import Phase

from .models import LeaderboardSnapshot

LIVE_PART = "live"
FINAL_PART = "final"


class PartRefused(Exception):
    """`part` names no leaderboard of this phase (`hidden` False: a bad value, 400) or one the user may not see yet
    (`hidden` True: 404 on pages, 403 in the API)."""

    def __init__(self, message: str, *, hidden: bool):
        super().__init__(message)
        self.hidden = hidden


def requested_kind(phase: Phase, user, part: str | None) -> str | None:
    """None for the live leaderboard, LeaderboardSnapshot.Kind.PRIVATE for the final one; PartRefused otherwise."""
    if part in (None, "", LIVE_PART):
        return None
    if part != FINAL_PART:
        raise PartRefused(f"{str(part)[:20]!r} is not a leaderboard part; use live or final.", hidden=False)
    if not phase.is_split:
        raise PartRefused("This phase is not split into public and private parts: it has no final leaderboard.",
                          hidden=False)
    if not can_see_private_part(phase, user):
        raise PartRefused("This phase's final leaderboard is hidden until its organizers reveal it.", hidden=True)
    return LeaderboardSnapshot.Kind.PRIVATE
