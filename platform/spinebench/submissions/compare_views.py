"""The compare view of two submissions of one phase (page and API): per-case paired differences with a chart and
one Wilcoxon signed-rank p-value (submissions.comparison). Only where both submissions' per-case figures may be
shown to the user (spinebench.access.can_compare_submission): never for a participant on a hidden-label phase."""

from __future__ import annotations

from django.db.models import F
from django.http import Http404
from django.shortcuts import get_object_or_404, render

from spinebench.access import can_compare_submission

from .comparison import Comparison, NotComparable, compare_submissions
from .models import Submission
from .status import Status
from .svg_charts import difference_chart

_RELATED = ("phase__challenge", "phase__dataset_link__dataset", "creator", "evaluation")


def comparable_submission(pk, user) -> Submission:
    """The first submission of a comparison, or 404 for whoever may not compare it."""
    submission = get_object_or_404(Submission.objects.select_related(*_RELATED), pk=pk)
    if not can_compare_submission(submission, user):
        raise Http404
    return submission


def comparison_for(first: Submission, *, other: str, metric: str, user) -> Comparison:
    """Compare `first` with the submission whose id is `other` (text from the query), or raise NotComparable keyed
    by the field at fault. A submission the user may not compare reads like one that does not exist."""
    if not other.strip():
        raise NotComparable("Give the id of the submission to compare with.")
    missing = NotComparable(f"There is no submission {other[:20]!r} you may compare with on this phase.")
    if not other.strip().isdigit():
        raise missing
    second = Submission.objects.select_related(*_RELATED).filter(pk=int(other)).first()
    if second is None or not can_compare_submission(second, user):
        raise missing
    return compare_submissions(first=first, second=second, metric=metric)


#: How many submissions the page suggests to compare with (the best-ranked first).
CANDIDATES = 30


def _candidates(first: Submission, user) -> list[Submission]:
    """Succeeded submissions of the same phase the user may compare with, best-ranked first: the page's suggestions
    for the id field (any other id of the phase the user may compare still works)."""
    found = (
        Submission.objects.select_related(*_RELATED)
        .filter(phase=first.phase, status=Status.SUCCEEDED)
        .exclude(pk=first.pk)
        .order_by(F("evaluation__rank").asc(nulls_last=True), "-created")[:CANDIDATES]
    )
    return [submission for submission in found if can_compare_submission(submission, user)]


def compare_page(request, pk):
    first = comparable_submission(pk, request.user)
    other, metric = request.GET.get("with", ""), request.GET.get("metric", "")
    context = {"submission": first, "phase": first.phase, "challenge": first.phase.challenge, "other": other,
               "candidates": _candidates(first, request.user), "metrics": first.phase.leaderboard_metrics}
    status = 200
    if other or metric:
        try:
            comparison = comparison_for(first, other=other, metric=metric, user=request.user)
        except NotComparable as problem:
            context["errors"] = {problem.field: str(problem)}
            status = 400
        else:
            context["comparison"] = comparison
            context["metric_title"] = first.phase.metric_title(comparison.metric)
            context["rows"] = list(zip(comparison.cases, comparison.first, comparison.second, comparison.differences))
            context["chart"] = difference_chart(
                labels=comparison.cases, differences=comparison.differences,
                title=f"Per-case difference of {comparison.metric}: #{first.pk} minus #{other}",
                y_label=f"{comparison.metric} difference",
            )
    return render(request, "submissions/compare.html", context, status=status)
