"""Submission upload page, submission page (status, error, aggregates, per-case metrics where allowed), cancel, the
method card's edit page."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from spinebench.access import (
    can_cancel_submission,
    can_edit_method_card,
    can_see_case_results,
    can_see_ground_truth_plots,
    can_see_private_details,
    can_see_scores,
    can_view_submission,
    get_visible_phase,
)
from spinebench.uploads.handlers import refusal_of
from spinebench.uploads.middleware import upload_limit
from spinebench.uploads.models import StoredUpload

from . import case_viewer, ct_viewer, labelling_viewer, plots
from .card_edits import card_of, edit_method_card
from .forms import MethodCardForm, SubmissionForm
from .method_cards import FIELDS as METHOD_CARD_FIELDS
from .method_cards import MethodCard
from .models import Submission
from .quota import submission_quota
from .services import CancelRefused, SubmissionRefused, cancel_submission, create_submission, upload_kind
from .uploads import phase_limit_for_url


@login_required
@upload_limit(phase_limit_for_url)
def submission_create(request, challenge, phase):
    phase = get_visible_phase(request, challenge, phase)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    status = 200
    too_large = refusal_of(request)  # the body was over a limit and was never stored
    if too_large is not None:
        form = SubmissionForm(request.POST)
        form.add_error(None, str(too_large))
        status = too_large.status
    elif request.method == "POST" and form.is_valid():
        try:
            submission = create_submission(
                phase=phase, user=request.user, upload=form.cleaned_data["file"] or None,
                upload_session=form.cleaned_data["upload"], comment=form.cleaned_data["comment"],
                method_card=MethodCard(**{field: form.cleaned_data[field] for field in METHOD_CARD_FIELDS}),
            )
        except SubmissionRefused as refusal:
            form.add_error(None, str(refusal))
            status = 413 if refusal.code in ("too_large", "quota") else 200
        else:
            return redirect(submission)
    return render(
        request,
        "submissions/create.html",
        status=status,
        context={
            "form": form,
            "phase": phase,
            "challenge": phase.challenge,
            "is_participant": phase.challenge.is_participant(request.user),
            "used": submission_quota(phase=phase, user=request.user).used,
            "mine": Submission.objects.filter(phase=phase, creator=request.user)[:20],
            "chunked_kind": _chunked_kind(phase),
            "chunk_bytes": settings.SPINEBENCH_PAGE_CHUNK_BYTES,
        },
    )


def _chunked_kind(phase) -> str:
    """The chunk API's kind for this phase's large files (archives, prediction zips); CSVs travel in the form."""
    kind = upload_kind(phase)
    return "" if kind == StoredUpload.Kind.PREDICTIONS_CSV else kind


def submission_detail(request, pk):
    submission = get_object_or_404(Submission.objects.select_related("phase__challenge", "creator"), pk=pk)
    if not can_view_submission(submission, request.user):
        raise Http404
    phase = submission.phase
    # A blind phase's participants see the status only (no scores, rank, per-case results or figures).
    evaluation = getattr(submission, "evaluation", None) if can_see_scores(phase, request.user) else None
    aggregates = evaluation.aggregates if evaluation else {}
    show_cases = evaluation is not None and can_see_case_results(submission, request.user)
    case_metrics = evaluation.case_metrics if show_cases else {}
    case_columns = sorted({key for values in case_metrics.values() for key in values})
    plot_kinds = plots.submission_plot_kinds(submission) if evaluation and submission.status == "succeeded" else []
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
                (phase.metric_title(key), aggregates[key]) for key in _leaderboard_order(phase, aggregates)
            ],
            "case_columns": case_columns,
            "case_rows": [
                (case, [values.get(key) for key in case_columns]) for case, values in sorted(case_metrics.items())
            ],
            "private": can_see_private_details(submission, request.user),
            "can_edit_card": can_edit_method_card(submission, request.user),
            "plot_kinds": plot_kinds if plots_allowed else [],
            "plots_withheld": bool(plot_kinds) and not plots_allowed,
            "can_compare": plots_allowed and evaluation is not None,
            "case_viewer": plots_allowed and any(
                module.viewer_available(submission) for module in (case_viewer, ct_viewer, labelling_viewer)
            ),
        },
    )


def _viewable_case(request, pk, case_id):
    """The submission and the view of one of its cases, or 404: the figures' rule (never a hidden test case)."""
    submission = get_object_or_404(
        Submission.objects.select_related(
            "phase__challenge", "phase__dataset_link__dataset", "creator", "evaluation"
        ),
        pk=pk,
    )
    if not can_view_submission(submission, request.user) or not can_see_ground_truth_plots(submission, request.user):
        raise Http404
    if not case_viewer.viewer_available(submission):
        raise Http404
    try:
        return submission, case_viewer.case_view(submission, case_id)
    except KeyError:
        raise Http404("No such case in this submission's evaluation.") from None


def submission_case(request, pk, case_id):
    """One case of a submission: the radiograph with reference and predicted Cobb lines, and their numbers."""
    submission, view = _viewable_case(request, pk, case_id)
    cases = sorted(submission.evaluation.case_metrics)
    index = cases.index(case_id)
    return render(
        request,
        "submissions/case.html",
        {
            "submission": submission,
            "phase": submission.phase,
            "challenge": submission.phase.challenge,
            "view": view,
            "previous_case": cases[index - 1] if index > 0 else None,
            "next_case": cases[index + 1] if index + 1 < len(cases) else None,
        },
    )


def submission_case_image(request, pk, case_id):
    submission, view = _viewable_case(request, pk, case_id)
    image = case_viewer.case_image(submission, view.case_id)
    response = FileResponse(default_storage.open(image), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


def submission_plot(request, pk, kind):
    """A figure of the submission's evaluation as PNG: whoever may see the submission page, and only where the
    figure's per-case ground truth may be shown (spinebench.access.can_see_ground_truth_plots)."""
    submission = get_object_or_404(
        Submission.objects.select_related(
            "phase__challenge", "phase__dataset_link__dataset", "creator", "evaluation"
        ),
        pk=pk,
    )
    if not can_view_submission(submission, request.user) or not can_see_ground_truth_plots(submission, request.user):
        raise Http404
    if submission.status != "succeeded" or kind not in plots.submission_plot_kinds(submission):
        raise Http404
    response = FileResponse(default_storage.open(plots.submission_plot(submission, kind)), content_type="image/png")
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
    if not can_cancel_submission(submission, request.user):
        raise Http404
    try:
        cancelled = cancel_submission(submission, reason=request.POST.get("reason", "")[:500], actor=request.user)
    except CancelRefused as refusal:
        messages.error(request, str(refusal))
    else:
        if cancelled:
            messages.success(request, "Submission cancelled.")
    return redirect(submission)


@login_required
def method_card_edit(request, pk):
    """The card of a submission, edited by its submitter or their team mates (404 for everyone else)."""
    submission = get_object_or_404(Submission.objects.select_related("phase__challenge"), pk=pk)
    if not can_edit_method_card(submission, request.user):
        raise Http404
    form = MethodCardForm(request.POST if request.method == "POST" else None, initial=card_of(submission).as_fields())
    if request.method == "POST" and form.is_valid():
        try:
            changed = edit_method_card(submission=submission, changes=form.cleaned_data)
        except ValidationError as error:  # the service's checks, should the form's ever differ
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, "Method card saved." if changed else "Nothing changed.")
            return redirect(submission)
    return render(request, "submissions/method_card.html", {
        "form": form, "submission": submission, "phase": submission.phase, "challenge": submission.phase.challenge,
    })
