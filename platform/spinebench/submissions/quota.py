"""The submission quota: one answer to "how many submissions may this participant still make on this phase, and when
does the next one free up". The phase page, the upload page, the API (`GET /api/phases/{id}/quota/`) and the refusal
in `services.create_submission` all ask `submission_quota`, so the rule that a page announces is the rule that is
enforced.

The window is rolling: a submission counts for `phase.submission_limit_period_hours` after it was created, and only
while it is not failed or cancelled (a broken file must not cost a try). A phase may also set a total over its whole
life (`phase.submission_total_limit`), counted the same way: remaining = min(limit - used, total_limit - total_used),
and a total once used up never frees (next_frees_at is then None).

Teams (spinebench.teams): a member of a team shares the team's quota, counting every submission of the phase that
belongs to the team (made by any member, or moved to the team when its creator joined); a user in no team counts
their own submissions that belong to no team (those they made as a member stay with that team after they leave).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from spinebench.teams.services import team_of

from .models import Submission
from .status import COUNTED


@dataclass(frozen=True)
class Quota:
    """What one participant may still submit to one phase at `now`."""

    limit: int | None  # None: the phase sets no limit
    used: int  # counted submissions created inside the window
    period: timedelta
    now: datetime
    next_frees_at: datetime | None  # when the oldest counted submission leaves the window (None: nothing to free)
    total_limit: int | None = None  # None: no total over the whole phase
    total_used: int = 0  # counted submissions over the whole phase

    @property
    def remaining(self) -> int | None:
        left = [limit - used for limit, used in ((self.limit, self.used), (self.total_limit, self.total_used))
                if limit is not None]
        return max(0, min(left)) if left else None

    @property
    def total_exhausted(self) -> bool:
        return self.total_limit is not None and self.total_used >= self.total_limit

    @property
    def exhausted(self) -> bool:
        return self.total_exhausted or (self.limit is not None and self.used >= self.limit)

    @property
    def period_hours(self) -> int:
        return int(self.period.total_seconds() // 3600)

    def as_dict(self) -> dict:
        """The API's representation (datetimes as ISO 8601)."""
        return {
            "limit": self.limit,
            "used": self.used,
            "remaining": self.remaining,
            "exhausted": self.exhausted,
            "period_hours": self.period_hours,
            "next_frees_at": self.next_frees_at.isoformat() if self.next_frees_at else None,
            "total_limit": self.total_limit,
            "total_used": self.total_used,
        }


def submission_quota(*, phase, user, now: datetime | None = None) -> Quota:
    """The quota of `user` (their team's, when they have one in the phase's challenge) on `phase` at `now` (default:
    the current time). Anonymous users have used nothing.

    Callers that act on the answer (creating a submission) hold the participant's lock (and their team's) first, so
    two parallel uploads cannot both see the last free slot."""
    now = now or timezone.now()
    period = phase.submission_limit_period
    total_limit = phase.submission_total_limit
    if not (user and user.is_authenticated):
        return Quota(limit=phase.submission_limit, used=0, period=period, now=now, next_frees_at=None,
                     total_limit=total_limit)
    team = team_of(challenge=phase.challenge, user=user)
    owner = {"team": team} if team is not None else {"creator": user, "team__isnull": True}
    counted = Submission.objects.filter(
        phase=phase, **owner, is_baseline=False, status__in=COUNTED,
        rerun_of__isnull=True,  # an organizer's re-run of an upload costs the participant nothing
    )
    created = list(counted.filter(created__gt=now - period).order_by("created").values_list("created", flat=True))
    total_used = counted.count() if total_limit is not None else 0
    frees_at = created[0] + period if created and phase.submission_limit is not None else None
    if total_limit is not None and total_used >= total_limit:
        frees_at = None  # a used-up total never frees
    return Quota(limit=phase.submission_limit, used=len(created), period=period, now=now, next_frees_at=frees_at,
                 total_limit=total_limit, total_used=total_used)
