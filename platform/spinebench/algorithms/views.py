"""The "How to submit a container" page and the container jobs of one submission."""

from django.http import Http404
from django.shortcuts import get_object_or_404, render

from spinebench.access import can_see_private_details
from spinebench.submissions.models import Submission

from .io_layout import task_layouts
from .models import AlgorithmRun


def howto(request):
    return render(request, "algorithms/howto.html", {"tasks": task_layouts()})


def logs_visible(submission, user) -> bool:
    """Organizers always; the submitter only when the phase's inputs are not hidden test data (an algorithm could
    print its inputs, and the hidden test images must not come back through the logs; nor through exit codes or
    per-case durations, which it controls just as well, so these follow the same rule)."""
    phase = submission.phase
    if phase.challenge.is_organizer(user):
        return True
    return phase.dataset is not None and not phase.dataset.is_hidden


def submission_jobs(request, pk):
    submission = get_object_or_404(
        Submission.objects.select_related("phase__challenge", "phase__dataset_link__dataset"), pk=pk
    )
    if not can_see_private_details(submission, request.user):
        raise Http404
    run = AlgorithmRun.objects.filter(submission=submission).select_related("image").first()
    return render(request, "algorithms/submission.html", {
        "submission": submission,
        "phase": submission.phase,
        "run": run,
        "jobs": list(run.jobs.all()) if run else [],
        "show_logs": logs_visible(submission, request.user),
    })
