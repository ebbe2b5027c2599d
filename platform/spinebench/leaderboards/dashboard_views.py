"""The participant's dashboard page (/dashboard/): their challenges and their submissions, the submission table
refreshing itself (htmx, every few seconds) while any of them is still in progress, and stopping once all are final."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from spinebench.access import scores_visible, visible_phases
from spinebench.teams.models import Invitation

from .dashboard import my_challenges, my_submissions

#: Seconds between two refreshes of the submission table while a submission is in progress.
POLL_SECONDS = 3


def _submissions_context(user) -> dict:
    submissions = my_submissions(user=user, scores_visible=scores_visible)
    return {"submissions": submissions, "live": any(not facts.is_final for facts in submissions),
            "poll_seconds": POLL_SECONDS}


@login_required
def dashboard(request):
    """`?fragment=submissions` answers the submission table alone (what the page's polling swaps in)."""
    context = _submissions_context(request.user)
    if request.GET.get("fragment") == "submissions":
        return render(request, "leaderboards/_dashboard_submissions.html", context)
    context["challenges"] = my_challenges(
        user=request.user, visible_phases=visible_phases, scores_visible=scores_visible
    )
    context["invitations"] = Invitation.objects.filter(
        invitee=request.user, status=Invitation.Status.PENDING
    ).select_related("team__challenge")
    return render(request, "leaderboards/dashboard.html", context)
