"""The submission monitor pages of a challenge's organizers: the filterable table, one submission's page (status,
reason, evaluation history, container logs) and its actions (re-run, hide, restore; cancelling goes through the one
cancel view of spinebench.submissions). Thin: the access policy decides, organizers.monitor and
submissions.moderation act."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import can_moderate_submission, can_monitor_submissions
from spinebench.challenges.models import Challenge
from spinebench.submissions.models import Submission
from spinebench.submissions.moderation import (
    ModerationRefused,
    hide_submission,
    rerun_submission,
    restore_submission,
)

from .monitor import MonitorFilter, container_logs, evaluation_history, monitored_submissions

ROWS_PER_PAGE = 50


def monitored_challenge(request: HttpRequest, slug: str) -> Challenge:
    """The challenge whose monitor the user may open, or a 404 (never saying that a hidden challenge exists)."""
    challenge = get_object_or_404(Challenge, slug=slug)
    if not can_monitor_submissions(challenge, request.user):
        raise Http404
    return challenge


def _moderated(request: HttpRequest, slug: str, pk: int) -> Submission:
    challenge = monitored_challenge(request, slug)
    submission = get_object_or_404(
        Submission.objects.select_related("phase__challenge", "creator"), pk=pk, phase__challenge=challenge
    )
    if not can_moderate_submission(submission, request.user):
        raise Http404
    return submission


@login_required
def monitor(request: HttpRequest, challenge: str) -> HttpResponse:
    found = monitored_challenge(request, challenge)
    form = MonitorFilter(request.GET or None, challenge=found)
    valid = not form.is_bound or form.is_valid()
    filters = form.cleaned_data if form.is_bound and valid else {}
    submissions = monitored_submissions(challenge=found, filters=filters) if valid else Submission.objects.none()
    page = Paginator(submissions, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "organizers/monitor/list.html",
        {"challenge": found, "form": form, "page_obj": page, "query": query.urlencode(), "phases": found.phases.all()},
    )


@login_required
def monitor_submission(request: HttpRequest, challenge: str, pk: int) -> HttpResponse:
    submission = _moderated(request, challenge, pk)
    return render(
        request,
        "organizers/monitor/submission.html",
        {
            "challenge": submission.phase.challenge,
            "phase": submission.phase,
            "submission": submission,
            "evaluation": getattr(submission, "evaluation", None),
            "private_evaluation": getattr(submission, "private_evaluation", None),  # a split phase's private part
            "history": evaluation_history(submission),
            "logs": container_logs(submission),
            "reruns": submission.reruns.order_by("-created"),
        },
    )


def _act(request: HttpRequest, submission: Submission, action, done: str) -> HttpResponse:
    try:
        result = action()
    except ModerationRefused as refusal:
        messages.error(request, str(refusal))
        result = submission
    else:
        messages.success(request, done)
    return redirect("organizer_evaluation:submission", challenge=submission.phase.challenge.slug, pk=result.pk)


@login_required
@require_POST
def submission_hide(request: HttpRequest, challenge: str, pk: int) -> HttpResponse:
    submission = _moderated(request, challenge, pk)
    reason = request.POST.get("reason", "")
    return _act(request, submission, lambda: hide_submission(submission=submission, reason=reason,
                                                            actor=request.user),
                "Hidden from the leaderboard; the submitter sees the reason.")


@login_required
@require_POST
def submission_restore(request: HttpRequest, challenge: str, pk: int) -> HttpResponse:
    submission = _moderated(request, challenge, pk)
    return _act(request, submission, lambda: restore_submission(submission=submission, actor=request.user),
                "Back on the leaderboard.")


@login_required
@require_POST
def submission_rerun(request: HttpRequest, challenge: str, pk: int) -> HttpResponse:
    submission = _moderated(request, challenge, pk)
    return _act(request, submission, lambda: rerun_submission(submission=submission, actor=request.user),
                f"Submission {submission.pk} runs again as this new submission.")
