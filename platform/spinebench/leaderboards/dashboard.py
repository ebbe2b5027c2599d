"""What a participant's dashboard shows, gathered once for the page, its live fragment and the API: their challenges
(registration, team, per phase their entry's position and their remaining submissions) and their submissions (status,
position, score, quota, links).

Positions come from each phase's latest leaderboard snapshot (never a re-rank); remaining submissions and when the
next frees up from the submission quota service (with teams). Whether a user may see scores and positions is not
decided here: the views pass `scores_visible` of the access policy, and hide what it refuses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import reverse

from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.submissions.models import Submission
from spinebench.submissions.quota import Quota, submission_quota
from spinebench.submissions.status import TERMINAL
from spinebench.teams.models import Team
from spinebench.teams.services import team_of

from .services import Row, latest_snapshot, snapshot_rows

#: How many of one's newest submissions the dashboard lists.
SUBMISSIONS_SHOWN = 50


@dataclass(frozen=True)
class SubmissionFacts:
    submission: Submission
    phase: Phase
    team: Team | None
    position: int | None  # rank of this submission on the latest snapshot (None: not the ranked entry, or hidden)
    score: float | None  # the phase's ranking metric (None: not scored yet, or hidden)
    quota: Quota
    scores_shown: bool

    @property
    def is_final(self) -> bool:
        return self.submission.status in TERMINAL

    @property
    def logs_url(self) -> str:
        """The container runs and their logs (algorithm phases); CSV submissions have none."""
        if self.phase.submission_kind != Phase.SubmissionKind.ALGORITHM:
            return ""
        return reverse("algorithms:submission", kwargs={"pk": self.submission.pk})

    @property
    def resubmit_url(self) -> str:
        """The phase's upload page while it accepts submissions."""
        if not self.phase.is_open():
            return ""
        return reverse("submissions:create", kwargs={"challenge": self.phase.challenge.slug, "phase": self.phase.slug})

    def as_dict(self) -> dict:
        """The API's representation."""
        submission = self.submission
        return {
            "id": submission.pk,
            "challenge": self.phase.challenge.slug,
            "phase": self.phase.pk,
            "phase_title": self.phase.title,
            "team": self.team.pk if self.team else None,
            "status": submission.status,
            "is_final": self.is_final,
            "created": submission.created.isoformat(),
            "finished_at": submission.finished_at.isoformat() if submission.finished_at else None,
            "scores_shown": self.scores_shown,
            "position": self.position,
            "score": self.score,
            "quota": self.quota.as_dict(),
            "url": submission.get_absolute_url(),
            "logs_url": self.logs_url or None,
            "resubmit_url": self.resubmit_url or None,
        }


@dataclass(frozen=True)
class PhaseStanding:
    phase: Phase
    position: int | None  # the user's (or team's) entry on the latest snapshot
    quota: Quota


@dataclass(frozen=True)
class ChallengeFacts:
    challenge: Challenge
    registration_status: str
    team: Team | None
    phases: list[PhaseStanding]


class _Phases:
    """Per-phase reads shared by every row of one dashboard: the latest snapshot's rows and the quota."""

    def __init__(self, user) -> None:
        self.user = user
        self._rows: dict[int, list[Row]] = {}
        self._quota: dict[int, Quota] = {}

    def rows(self, phase: Phase) -> list[Row]:
        if phase.pk not in self._rows:
            self._rows[phase.pk] = snapshot_rows(latest_snapshot(phase))
        return self._rows[phase.pk]

    def quota(self, phase: Phase) -> Quota:
        if phase.pk not in self._quota:
            self._quota[phase.pk] = submission_quota(phase=phase, user=self.user)
        return self._quota[phase.pk]


def my_submissions(*, user, scores_visible: Callable[[Phase, object], bool],
                   limit: int = SUBMISSIONS_SHOWN) -> list[SubmissionFacts]:
    """The user's newest submissions (all challenges), each with its position and score where `scores_visible`."""
    submissions = (
        Submission.objects.filter(creator=user, is_baseline=False)
        .select_related("phase__challenge", "team", "evaluation")
        .order_by("-created", "-pk")[:limit]
    )
    phases = _Phases(user)
    facts = []
    for submission in submissions:
        phase = submission.phase
        shown = scores_visible(phase, user)
        position = score = None
        if shown and submission.status == "succeeded":
            row = next((row for row in phases.rows(phase) if row.submission.pk == submission.pk), None)
            position = row.rank if row else None
            evaluation = getattr(submission, "evaluation", None)
            score = evaluation.aggregates.get(phase.ranking_metric) if evaluation else None
        facts.append(SubmissionFacts(submission=submission, phase=phase, team=submission.team, position=position,
                                     score=score, quota=phases.quota(phase), scores_shown=shown))
    return facts


def _entry_position(rows: list[Row], *, user, team: Team | None) -> int | None:
    """The rank of the team's entry, or of the user's own entry when they are in no team."""
    for row in rows:
        if (row.team == team.pk) if team is not None else (row.team is None and row.user == user.pk):
            return row.rank
    return None


def my_challenges(*, user, visible_phases: Callable[[Challenge, Any], Any],
                  scores_visible: Callable[[Phase, object], bool]) -> list[ChallengeFacts]:
    """The challenges the user registered for, with their team and, per phase they may see, their entry's position
    (where `scores_visible`) and quota."""
    registrations = Registration.objects.filter(user=user).select_related("challenge").order_by("challenge__title")
    phases = _Phases(user)
    found = []
    for registration in registrations:
        challenge = registration.challenge
        team = team_of(challenge=challenge, user=user)
        standings = [
            PhaseStanding(
                phase=phase,
                position=_entry_position(phases.rows(phase), user=user, team=team)
                if scores_visible(phase, user) else None,
                quota=phases.quota(phase),
            )
            for phase in visible_phases(challenge, user).select_related("challenge")
        ]
        found.append(ChallengeFacts(challenge=challenge, registration_status=registration.get_status_display(),
                                    team=team, phases=standings))
    return found
