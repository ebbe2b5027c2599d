"""The `chosen` selection mode: a participant picks which of their succeeded submissions (at most the phase's
`max_chosen`) represent them; the leaderboard ranks the best of those (leaderboards.ranking.select_entries), and
their best submission overall while they have chosen none.

"Their" submissions are those sharing the participant's leaderboard key (Submission.participant_key, the grouping
the ranking uses): `own_submissions` is the one place that decides it, so grouping by team changes only there."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.challenges.models import Phase
from spinebench.challenges.signals import ranking_changed
from spinebench.teams.services import team_of

from .models import Submission
from .status import Status


def own_submissions(*, phase: Phase, user):
    """The submissions on `phase` that count as `user`'s leaderboard entry: their team's when they are in one (a team is
    one entry, and any member picks for it), otherwise their own that belong to no team."""
    team = team_of(challenge=phase.challenge, user=user)
    owner = {"team": team} if team is not None else {"creator": user, "team__isnull": True}
    return Submission.objects.filter(phase=phase, is_baseline=False, **owner)


def choosable_submissions(*, phase: Phase, user):
    """What `user` may choose from: their succeeded submissions on the phase, newest first."""
    return own_submissions(phase=phase, user=user).filter(status=Status.SUCCEEDED).select_related("evaluation")


def choose_submissions(*, phase: Phase, user, submission_pks: Iterable[int]) -> list[Submission]:
    """Make exactly `submission_pks` the user's chosen submissions on `phase` (an empty list clears the choice, so
    their best one counts again) and re-rank the phase. Errors are keyed by `submissions` and change nothing: the
    phase does not use chosen selection, too many picks, or a pick that is not one of the user's succeeded
    submissions on this phase (failed, still running, someone else's, another phase's, or unknown)."""
    wanted = list(dict.fromkeys(submission_pks))
    if phase.selection != Phase.Selection.CHOSEN:
        shown = phase.get_selection_display()
        raise ValidationError({"submissions": f"Phase {phase.title} ranks the {shown}; there is nothing to choose."})
    if len(wanted) > phase.max_chosen:
        limit = f"Choose at most {phase.max_chosen} submissions on {phase.title}"
        raise ValidationError({"submissions": f"{limit} (you chose {len(wanted)})."})
    with transaction.atomic():
        mine = list(own_submissions(phase=phase, user=user).select_for_update().order_by("pk"))
        by_pk = {submission.pk: submission for submission in mine}
        problems = []
        for pk in wanted:
            submission = by_pk.get(pk)
            if submission is None:
                problems.append(f"Submission {pk} is not one of your submissions to {phase.title}.")
            elif submission.status != Status.SUCCEEDED:
                problems.append(
                    f"Submission {pk} is {submission.get_status_display()}: only succeeded submissions can be chosen."
                )
        if problems:
            raise ValidationError({"submissions": problems})
        Submission.objects.filter(pk__in=[s.pk for s in mine]).exclude(pk__in=wanted).update(chosen=False)
        Submission.objects.filter(pk__in=wanted).update(chosen=True)
        ranking_changed.send(sender=Submission, phase_pk=phase.pk)
    return list(own_submissions(phase=phase, user=user).filter(chosen=True).order_by("pk"))
