"""Submission upload page, submission page (status, error, aggregates, per-case metrics where allowed), cancel."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import (
    can_see_case_results,
    can_see_ground_truth_plots,
    can_see_private_details,
    can_view_submission,
    get_visible_phase,
)
from spinebench.challenges.registry import metric_title

from . import plots
from .forms import SubmissionForm
from .models import Submission
from .services import SubmissionRefused, cancel_submission, create_submission, submissions_in_window


@login_required
def submission_create(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            submission = create_submission(
                phase=phase, user=request.user, upload=form.cleaned_data["file"], comment=form.cleaned_data["comment"]
            )
        except SubmissionRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            return redirect(submission)
    return render(
        request,
        "submissions/create.html",
        {
            "form": form,
            "phase": phase,
            "challenge": phase.challenge,
            "is_participant": phase.challenge.is_participant(request.user),
            "used": submissions_in_window(phase=phase, user=request.user),
            "mine": Submission.objects.filter(phase=phase, creator=request.user)[:20],
        },
    )


def submission_detail(request, pk):
    submission = get_object_or_404(Submission.objects.select_related("phase__challenge", "creator"), pk=pk)
    if not can_view_submission(submission, request.user):
        raise Http404
    phase = submission.phase
    evaluation = getattr(submission, "evaluation", None)
    aggregates = evaluation.aggregates if evaluation else {}
    show_cases = evaluation is not None and can_see_case_results(submission, request.user)
    case_metrics = evaluation.case_metrics if show_cases else {}
    case_columns = sorted({key for values in case_metrics.values() for key in values})
    plot_kinds = plots.submission_plot_kinds(submission) if submission.status == "succeeded" else []
    plots_allowed = can_see_ground_truth_plots(submission, request.user)
    return render(
        request,
        "submissions/detail.html",
        {
            "submission": submission,
            "phase": phase,
            "challenge": phase.challenge,
            "evaluation": evaluation,
            "aggregates": [
                (metric_title(phase.task, key), aggregates[key]) for key in _leaderboard_order(phase, aggregates)
            ],
            "case_columns": case_columns,
            "case_rows": [
                (case, [values.get(key) for key in case_columns]) for case, values in sorted(case_metrics.items())
            ],
            "private": can_see_private_details(submission, request.user),
            "plot_kinds": plot_kinds if plots_allowed else [],
            "plots_withheld": bool(plot_kinds) and not plots_allowed,
        },
    )


def submission_plot(request, pk, kind):
    """A figure of the submission's evaluation as PNG: whoever may see the submission page, and only where the
    figure's per-case ground truth may be shown (spinebench.access.can_see_ground_truth_plots)."""
    submission = get_object_or_404(
        Submission.objects.select_related("phase__challenge", "phase__dataset", "creator", "evaluation"), pk=pk
    )
    if not can_view_submission(submission, request.user) or not can_see_ground_truth_plots(submission, request.user):
        raise Http404
    if submission.status != "succeeded" or kind not in plots.submission_plot_kinds(submission):
        raise Http404
    response = FileResponse(plots.submission_plot(submission, kind).open("rb"), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


def _leaderboard_order(phase, aggregates: dict) -> list[str]:
    """The phase's leaderboard columns first (in their order), then the other aggregates alphabetically."""
    first = [key for key in phase.leaderboard_metrics if key in aggregates]
    return first + sorted(key for key in aggregates if key not in first)


@login_required
@require_POST
def submission_cancel(request, pk):
    submission = get_object_or_404(Submission, pk=pk)
    if not can_see_private_details(submission, request.user):
        raise Http404
    if cancel_submission(submission):
        messages.success(request, "Submission cancelled.")
    return redirect(submission)
