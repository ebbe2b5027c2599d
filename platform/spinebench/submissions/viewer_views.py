"""Case viewer pages of every task with one (AASCE radiograph, CT slices, labelling radiograph) behind one URL per
case, and the CT slice and labelling PNGs. Each request, page or picture, passes the figures' rule
(`can_see_ground_truth_plots`: organizers, others only where the phase's labels are public) or gets a 404, so a hidden
test case's address gives a participant nothing. Hidden phases' pictures are sent with `no-store`."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, render

from spinebench.access import (
    can_see_ground_truth_plots,
    can_view_submission,
    phase_labels_public,
)

from . import case_viewer, ct_viewer, labelling_viewer, views
from .models import Submission

logger = logging.getLogger(__name__)


@contextmanager
def _readable(submission: Submission, case_id: str):
    """A case whose files went missing or unreadable on the server (a dataset moved, a file damaged) is a 404 with
    that reason, logged for the operators, never a 500."""
    try:
        yield
    except (OSError, RuntimeError) as error:  # SimpleITK raises RuntimeError for a file it cannot read
        logger.exception("case viewer: submission %s case %s cannot be read", submission.pk, case_id)
        raise Http404("This case's files are not available on the server.") from error


def viewer_available(submission: Submission) -> bool:
    """Some viewer exists for this submission's cases (whoever looks)."""
    return any(module.viewer_available(submission) for module in (case_viewer, ct_viewer, labelling_viewer))


def _permitted(request, pk: int) -> Submission:
    submission = get_object_or_404(
        Submission.objects.select_related(
            "phase__challenge", "phase__dataset_link__dataset", "creator", "evaluation"
        ),
        pk=pk,
    )
    if not can_view_submission(submission, request.user) or not can_see_ground_truth_plots(submission, request.user):
        raise Http404
    return submission


def _neighbours(submission: Submission, case_id: str) -> dict:
    cases = sorted(submission.evaluation.case_metrics)
    index = cases.index(case_id)
    return {
        "previous_case": cases[index - 1] if index > 0 else None,
        "next_case": cases[index + 1] if index + 1 < len(cases) else None,
    }


def _png(submission: Submission, body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300" if phase_labels_public(submission.phase) else "private, no-store"
    return response


def _ct_volumes(submission: Submission, case_id: str):
    if not ct_viewer.viewer_available(submission):
        raise Http404
    try:
        with _readable(submission, case_id):
            return ct_viewer.load_volumes(submission, case_id, cache=phase_labels_public(submission.phase))
    except KeyError:
        raise Http404("No such case in this submission's evaluation.") from None


def case_page(request, pk, case_id):
    """One case of a submission in the viewer of its task."""
    submission = _permitted(request, pk)
    task = submission.phase.task
    if task in case_viewer.VIEWER_TASKS:
        return views.submission_case(request, pk, case_id)
    context = {"submission": submission, "phase": submission.phase, "challenge": submission.phase.challenge}
    if task in labelling_viewer.LABELLING_TASKS and labelling_viewer.viewer_available(submission):
        try:
            with _readable(submission, case_id):
                view = labelling_viewer.case_view(submission, case_id)
        except KeyError:
            raise Http404("No such case in this submission's evaluation.") from None
        return render(request, "submissions/labelling_case.html",
                      {**context, "view": view, **_neighbours(submission, case_id)})
    volumes = _ct_volumes(submission, case_id)
    with _readable(submission, case_id):
        view = ct_viewer.case_view(submission, volumes, case_id)
    window = request.GET.get("window", ct_viewer.DEFAULT_WINDOW)
    try:
        indices = {
            plane: ct_viewer.check_request(volumes, plane, request.GET.get(plane, view.centre[plane]), window)
            for plane in ct_viewer.PLANES
        }
    except ct_viewer.SliceRequestError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    planes = [
        (plane, indices[plane], view.counts[plane] - 1,
         *ct_viewer.display_size(volumes.image.shape, volumes.spacing, plane))
        for plane in ct_viewer.PLANES
    ]
    return render(request, "submissions/ct_case.html", {
        **context, "view": view, "planes": planes, "window": window, "windows": list(ct_viewer.WINDOWS),
        "segmentation": task in ct_viewer.SEGMENTATION_TASKS, **_neighbours(submission, case_id),
    })


def case_image(request, pk, case_id):
    """The case's picture: the AASCE figure or the labelling radiograph (CT cases have slices instead)."""
    submission = _permitted(request, pk)
    if submission.phase.task in case_viewer.VIEWER_TASKS:
        return views.submission_case_image(request, pk, case_id)
    if not labelling_viewer.viewer_available(submission):
        raise Http404
    try:
        with _readable(submission, case_id):
            view = labelling_viewer.case_view(submission, case_id)
            body = labelling_viewer.render(submission, view)
    except KeyError:
        raise Http404("No such case in this submission's evaluation.") from None
    return _png(submission, body)


def ct_slice(request, pk, case_id, plane, index):
    """One slice as PNG: 404 where the viewer may not be seen, 400 for an unknown plane or window or an index out
    of range."""
    submission = _permitted(request, pk)
    volumes = _ct_volumes(submission, case_id)
    window = request.GET.get("window", ct_viewer.DEFAULT_WINDOW)
    try:
        number = ct_viewer.check_request(volumes, plane, index, window)
    except ct_viewer.SliceRequestError as error:
        return HttpResponseBadRequest(str(error), content_type="text/plain; charset=utf-8")
    return _png(submission, ct_viewer.render_slice(submission, volumes, plane, number, window))
