"""The live part of a challenge's baselines tab: the run table alone, which the tab re-requests with htmx every few
seconds while a run is active. Without htmx the same URL leads to the tab itself."""

from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render

from spinebench.access import visible_challenges, visible_phases

from .baseline_runs import runs_overview


def baselines_page(request, challenge):
    challenge = get_object_or_404(visible_challenges(request.user), slug=challenge)
    if request.GET.get("fragment") != "runs":
        return redirect(f"{challenge.get_absolute_url()}?tab=baselines")
    phases = list(visible_phases(challenge, request.user))
    if not phases:
        raise Http404
    return render(request, "submissions/_baseline_runs.html", {"challenge": challenge, **runs_overview(phases)})
