"""Comparing two scored submissions of one phase case by case: the paired differences d_c = first_c - second_c of a
per-case metric over the cases both have a finite value for, and one two-sided Wilcoxon signed-rank p-value from
the shared statistics module: p = min(1, 2 min(p_first_better, p_second_better)), each one-sided p from
evaluators.statistics.wilcoxon_better (zero differences dropped; p = 1 when every difference is zero).

Who may see it is the access policy's business (per-case values read against one's own predictions give the
labels, so it follows the rule of the per-case figures)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError

from evaluators import statistics
from spinebench.challenges.registry import default_direction

from .models import Submission
from .status import Status


class NotComparable(ValueError):
    """The two submissions cannot be compared; `field` names the input at fault (`with` or `metric`)."""

    def __init__(self, message: str, *, field: str = "with"):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Comparison:
    metric: str
    direction: str
    cases: list[str]
    first: list[float]
    second: list[float]
    differences: list[float]  # first - second, per case
    p_value: float
    first_better: int  # cases where the first is better by the metric's direction
    second_better: int
    metrics: list[str]  # every per-case metric both submissions have (what `metric` may name)

    @property
    def mean_difference(self) -> float | None:
        return sum(self.differences) / len(self.differences) if self.differences else None


def _case_values(submission: Submission) -> dict:
    evaluation = getattr(submission, "evaluation", None)
    if submission.status != Status.SUCCEEDED or evaluation is None:
        raise NotComparable(f"Submission {submission.pk} has no scores to compare.")
    return evaluation.case_metrics


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _direction(phase, key: str) -> str:
    """The metric's direction, or '' for a per-case value that is no metric of the task (no better or worse)."""
    try:
        return phase.metric_directions.get(key) or default_direction(phase.task, key)
    except ValidationError:
        return ""


def compare_submissions(*, first: Submission, second: Submission, metric: str = "") -> Comparison:
    """The paired comparison of `first` against `second` on `metric` (default: the phase's leaderboard metrics'
    first one that is reported per case)."""
    if first.pk == second.pk:
        raise NotComparable("Choose another submission than this one.")
    if first.phase_id != second.phase_id:
        raise NotComparable(f"Submission {second.pk} belongs to another phase; only one phase's submissions compare.")
    mine, theirs = _case_values(first), _case_values(second)
    common = sorted(set(mine) & set(theirs))
    phase = first.phase
    reported = {key for case in common for key in mine[case]} & {key for case in common for key in theirs[case]}
    available = sorted(key for key in reported if _direction(phase, key))
    if not metric:
        metric = next((key for key in phase.leaderboard_metrics if key in available), available[0] if available else "")
    if metric not in available:
        raise NotComparable(
            f"{metric[:40]!r} is not a per-case metric of these submissions; choose one of: "
            f"{', '.join(available) or 'none'}.",
            field="metric",
        )
    direction = _direction(phase, metric)
    cases = [case for case in common if _finite(mine[case].get(metric)) and _finite(theirs[case].get(metric))]
    a = [float(mine[case][metric]) for case in cases]
    b = [float(theirs[case][metric]) for case in cases]
    differences = [x - y for x, y in zip(a, b)]
    if cases:
        greater = statistics.wilcoxon_better(first=a, second=b, direction="higher")
        less = statistics.wilcoxon_better(first=a, second=b, direction="lower")
        p_value = min(1.0, 2 * min(greater, less))
    else:
        p_value = 1.0
    sign = 1 if direction == "higher" else -1
    return Comparison(
        metric=metric, direction=direction, cases=cases, first=a, second=b, differences=differences, p_value=p_value,
        first_better=sum(1 for d in differences if sign * d > 0),
        second_better=sum(1 for d in differences if sign * d < 0),
        metrics=available,
    )
