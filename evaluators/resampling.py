"""The built-in evaluators applied to case resamples, for the bootstrap of set-level leaderboard metrics.

`evaluators.statistics` resamples cases; what a resample's metric is depends on the task. A metric whose aggregate
is the mean of its per-case values (SMAPE, Dice) needs nothing from here: the statistics are computed from the
stored case values (`is_case_mean`). A set-level metric (ROC AUC, a pooled identification rate) must be
re-evaluated on every resample from the predictions and the ground truth: `resample_evaluator` loads them once and
returns a function of a row of case positions (with repeats) giving that resample's aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evaluators import formats, metrics, scoring

#: Tasks whose every per-case metric aggregates as the (NaN-ignoring) mean over cases; other tasks list theirs.
_ALL_CASE_MEANS = {"aasce-cobb", "metastatic-body-ct", "lumbosacral-ct"}
_CASE_MEANS = {"fracture-ct": {"accuracy_patient"}, "vertebra-labelling-xr": set()}


def is_case_mean(task_id: str, metric: str) -> bool:
    """True when the leaderboard value of `metric` is the mean of its per-case values (group keys `metric@group`
    are aggregates of a subset of cases: not a mean over the whole test set)."""
    if "@" in metric:
        return False
    if task_id in _ALL_CASE_MEANS:
        return not metric.endswith("_undefined")
    return metric in _CASE_MEANS.get(task_id, set())


def resample_evaluator(
    task_id: str, *, predictions: str | Path, ground_truth: str | Path, case_ids: Sequence[str]
) -> Callable[[np.ndarray], dict[str, float]] | None:
    """A function of an array of positions into `case_ids` (a case drawn twice counts twice) returning the task's
    set-level aggregates on that resample, or None when the task has no set-level metric. The predictions and
    ground truth are loaded and validated once, here."""
    if task_id not in ("fracture-ct", "vertebra-labelling-xr"):
        return None
    case_ids = list(case_ids)
    whole = formats.load_ground_truth(task_id, ground_truth)
    # Validated against the whole test set (as when scored); `case_ids` may be one part of a split test set.
    everything = formats.load_predictions(task_id, predictions, case_ids=list(whole))
    truth = {case_id: whole[case_id] for case_id in case_ids}
    predicted = {case_id: everything[case_id] for case_id in case_ids}
    if task_id == "vertebra-labelling-xr":
        scores = scoring.score_labelling(truth, predicted)
        return lambda positions: scores.aggregate([case_ids[position] for position in positions])
    return _fracture_evaluator(truth, predicted, case_ids)


def _fracture_evaluator(
    truth: dict[str, Any], predicted: dict[str, Any], case_ids: list[str]
) -> Callable[[np.ndarray], dict[str, float]]:
    """Pooled fracture metrics of a resample: the patient arrays indexed by the drawn cases, the vertebra arrays by
    every vertebra of every drawn case (a clustered resample: the patient is the unit), then the same formulas as
    `evaluators.scoring.score_fracture` (AUC without its own nested interval)."""
    vertebra_case, grades, vertebra_scores, patient_labels, patient_scores = scoring.fracture_arrays(truth, predicted)
    vertebra_labels = (grades >= 1).astype(int)
    position_of = {case_id: position for position, case_id in enumerate(case_ids)}
    member_lists: list[list[int]] = [[] for _ in case_ids]
    for index, case_id in enumerate(vertebra_case):
        member_lists[position_of[case_id]].append(index)
    members = [np.array(indices, dtype=np.int64) for indices in member_lists]

    def evaluate(positions: np.ndarray) -> dict[str, float]:
        positions = np.asarray(positions)
        vertebrae = np.concatenate([members[p] for p in positions]) if positions.size else np.array([], dtype=np.int64)
        result = {}
        for level, labels, scores in (
            ("patient", patient_labels[positions], patient_scores[positions]),
            ("vertebra", vertebra_labels[vertebrae], vertebra_scores[vertebrae]),
        ):
            result[f"auc_{level}"] = metrics.roc_auc(labels, scores) if labels.size else math.nan
            if labels.size:
                at = metrics.binary_scores(labels, scores, threshold=scoring.FRACTURE_THRESHOLD)
                result |= {f"{name}_{level}": value for name, value in at.items()}
                hits = (scores >= scoring.FRACTURE_THRESHOLD) == labels.astype(bool)
                result[f"accuracy_{level}"] = float(hits.mean())
        return result

    return evaluate
