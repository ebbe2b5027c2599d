"""The statistics of one leaderboard snapshot (run by the background task, never by a view): per entry the 95 %
percentile-bootstrap interval of the ranking metric, the bootstrap rank distribution and, among the top entries,
the Holm-corrected one-sided Wilcoxon significance matrix (evaluators.statistics does the arithmetic).

Per-case-mean metrics (SMAPE, Dice) are resampled from the stored case values; set-level metrics (ROC AUC, pooled
rates) are re-evaluated on every resample from the stored predictions with the built-in evaluator
(evaluators.resampling). Group metrics (`metric@group`) and set-level metrics of tasks without a resample
evaluator get no interval: the snapshot says "not available" and why. Only summaries are stored: no case value.
"""

from __future__ import annotations

import logging

import numpy as np

from evaluators import resampling
from evaluators import statistics as stats
from spinebench.challenges import registry
from spinebench.submissions.models import Submission

from .models import LeaderboardSnapshot
from .services import part_evaluations

logger = logging.getLogger(__name__)

CONFIDENCE = 0.95
ALPHA = 0.05
#: Resamples for per-case means (matrix arithmetic, cheap) and for re-evaluated set-level metrics (one evaluator
#: call per entry and resample).
CASE_MEAN_SAMPLES = 1000
SET_LEVEL_SAMPLES = 500
SEED = 0
#: Fewer cases than this: no statistics. A bootstrap over a handful of cases says little, and its interval bounds
#: would be single cases' values (the mean of a resample drawing one case n times), which a hidden test phase must
#: not show.
MIN_CASES = 10
#: Entries of the significance matrix and of the rank-stability plot: the top of the leaderboard.
TOP = 20


def compute(snapshot: LeaderboardSnapshot) -> dict:
    """The statistics JSON of `snapshot` (see the module docstring)."""
    phase = snapshot.phase
    rows = snapshot.rows
    keys = [metric["key"] for metric in snapshot.metrics]
    directions = [metric["direction"] for metric in snapshot.metrics]
    submissions = [row["submission"] for row in rows]
    ranking_metric = keys[0]
    needed = keys if snapshot.ranking_method != "primary" else [ranking_metric]
    case_values = _case_values(submissions, needed, kind=snapshot.kind)
    cases = sorted({case for values in case_values.values() for case in values})
    result = {
        "metric": ranking_metric, "direction": directions[0], "confidence": CONFIDENCE, "seed": SEED,
        "cases": len(cases), "entries": {}, "rank_counts": {}, "significance": None, "unavailable": {},
    }
    if len(cases) < MIN_CASES:
        result["unavailable"]["ci"] = f"fewer than {MIN_CASES} test cases"
        return result
    set_level = [key for key in needed if not registry.is_case_mean(phase, key)]
    samples = SET_LEVEL_SAMPLES if set_level else CASE_MEAN_SAMPLES
    indices = stats.bootstrap_indices(n_cases=len(cases), samples=samples, seed=SEED)
    result["samples"] = samples
    replicates = {}
    for key in needed:
        if key in set_level:
            replicates[key] = _set_level_replicates(phase, submissions, key, cases, indices)
        else:
            table = [[case_values[pk].get(case, {}).get(key) for case in cases] for pk in submissions]
            replicates[key] = stats.bootstrap_means(values=table, indices=indices)
    primary = replicates.get(ranking_metric)
    if primary is None:
        result["unavailable"]["ci"] = f"{ranking_metric} is neither a mean over cases nor re-evaluated on resamples"
        return result
    intervals = stats.percentile_intervals(replicates=primary, confidence=CONFIDENCE)
    if all(key in replicates for key in needed):
        ranks = stats.bootstrap_ranks(
            replicates=[replicates[key] for key in keys if key in needed],
            directions=[d for key, d in zip(keys, directions) if key in needed], method=snapshot.ranking_method,
        )
        summary = stats.rank_summary(ranks=ranks, reference=np.array([row["rank"] for row in rows]))
        counts = stats.rank_counts(ranks=ranks[:TOP])
        result["rank_counts"] = {str(pk): counts[i] for i, pk in enumerate(submissions[:TOP])}
    else:
        summary = [{} for _ in rows]
        result["unavailable"]["ranks"] = "a ranking metric has no bootstrap"
    for index, pk in enumerate(submissions):
        low, high = intervals[index]
        result["entries"][str(pk)] = {
            "ci_low": _number(low), "ci_high": _number(high),
            **{f"rank_{name}" if name != "stability" else name: value for name, value in summary[index].items()},
        }
    if ranking_metric in set_level:
        result["unavailable"]["significance"] = f"{ranking_metric} is a set-level metric: no paired per-case values"
    elif len(rows) >= 2:
        top = submissions[:TOP]
        table = [[case_values[pk].get(case, {}).get(ranking_metric) for case in cases] for pk in top]
        result["significance"] = {
            "alpha": ALPHA, "submissions": top,
            **stats.significance_matrix(values=table, direction=directions[0], alpha=ALPHA),
        }
    return result


def _number(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _case_values(submissions: list[int], keys: list[str], *, kind: str) -> dict[int, dict[str, dict]]:
    """submission pk -> {case: {metric: value}} for the metrics in `keys` (only here, in the background task), of
    the snapshot's part (a split phase's private part has its own rows)."""
    result: dict[int, dict[str, dict]] = {pk: {} for pk in submissions}
    found = part_evaluations(kind).objects.filter(submission_id__in=submissions)
    for pk, metrics in found.values_list("submission_id", "metrics"):
        result[pk] = {
            case: {key: values.get(key) for key in keys} for case, values in (metrics or {}).get("case", {}).items()
        }
    return result


def _set_level_replicates(phase, submissions: list[int], key: str, cases: list[str], indices) -> np.ndarray | None:
    """(entries, samples) replicate values of a set-level metric, re-evaluated from each entry's predictions; None
    when the task has no resample evaluator (an entry whose predictions cannot be read gets NaN rows)."""
    from spinebench.submissions.uploads import predictions_location

    if phase.dataset is None or "@" in key or phase.task == registry.CUSTOM_TASK:
        return None  # an evaluation image's set-level metric would need one container run per resample
    table = np.full((len(submissions), indices.shape[0]), np.nan)
    found = False
    stored = Submission.objects.in_bulk(submissions)
    for row, submission in enumerate(stored.get(pk) for pk in submissions):
        if submission is None or not submission.predictions_file:
            continue
        try:
            with predictions_location(submission) as predictions:
                evaluate = resampling.resample_evaluator(
                    phase.task, predictions=predictions, ground_truth=phase.dataset.ground_truth_dir, case_ids=cases
                )
                if evaluate is None:
                    return None
                table[row] = stats.bootstrap_set_metric(
                    evaluate=lambda drawn, evaluate=evaluate: evaluate(drawn).get(key), indices=indices
                )
                found = True
        except Exception:  # one unreadable entry must not cost the others their intervals
            logger.exception("statistics: re-evaluating submission %s on resamples failed", submission.pk)
    return table if found else None
