"""A phase's scoring page for its organizers: revealing a blind leaderboard, and re-scoring the phase (its
evaluation version, its re-score jobs with a progress bar, an htmx fragment polled while a job is active, and the
form that starts one: spinebench.evaluation.rescoring)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import can_rescore_phase, can_reveal_scores
from spinebench.challenges.models import Phase
from spinebench.challenges.visibility import RevealRefused, reveal_scores
from spinebench.evaluation.models import RescoreJob
from spinebench.evaluation.rescoring import RescoreRefused, start_rescore

from .monitor import phase_rescore_jobs


class RescoreForm(forms.Form):
    note = forms.CharField(
        max_length=500, required=False, label="Why",
        help_text="Recorded with the job and in the audit trail, e.g. “labels of case 12 corrected”.",
    )


def _phase(request: HttpRequest, challenge: str, phase: str) -> Phase:
    found = get_object_or_404(Phase.objects.select_related("challenge"), challenge__slug=challenge, slug=phase)
    if not can_rescore_phase(found, request.user):
        raise Http404
    return found


@login_required
def phase_rescore(request: HttpRequest, challenge: str, phase: str) -> HttpResponse:
    found = _phase(request, challenge, phase)
    form = RescoreForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            job = start_rescore(phase=found, actor=request.user, note=form.cleaned_data["note"])
        except RescoreRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(request, f"Re-score job {job.pk} started.")
            return redirect("organizer_evaluation:rescore", challenge=challenge, phase=phase)
    jobs = phase_rescore_jobs(found)[:20]
    return render(
        request,
        "organizers/rescore/phase.html",
        {"challenge": found.challenge, "phase": found, "form": form, "jobs": jobs},
    )


@login_required
@require_POST
def phase_reveal(request: HttpRequest, challenge: str, phase: str) -> HttpResponse:
    """Reveal a blind phase's leaderboard (one audited action; participants see scores and ranks from then on)."""
    found = _phase(request, challenge, phase)
    if not can_reveal_scores(found, request.user):
        raise Http404
    try:
        reveal_scores(phase=found, actor=request.user)
    except RevealRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, "The leaderboard is revealed: participants now see scores and ranks.")
    return redirect("organizer_evaluation:rescore", challenge=challenge, phase=phase)


@login_required
def rescore_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """One job's row, polled by htmx every 2 s while the job is active (the fragment stops polling once it ends)."""
    job = get_object_or_404(RescoreJob.objects.select_related("phase__challenge", "requested_by"), pk=pk)
    if not can_rescore_phase(job.phase, request.user):
        raise Http404
    return render(request, "organizers/rescore/_job.html", {"job": job})
