"""ROC analysis for fracture classification: AUC (Mann-Whitney), bootstrap confidence intervals, curve points, the
ROC convex hull, and counts-based scores at a threshold. The resampling itself (stratified or clustered draws) is
`evaluators.statistics.bootstrap_samples`; this module holds the AUC-specific fast path over its multiplicities."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

from evaluators.statistics import class_or_cluster_draws, multiplicities


def _labels_scores(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.shape != labels.shape:
        raise ValueError(
            f"labels and scores: expected two 1-D arrays of one length, got {labels.shape} and {scores.shape}"
        )
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError("labels: expected only 0 (negative) and 1 (positive)")
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores: every score must be a finite number")
    return labels.astype(bool), scores


def roc_auc(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic:

    AUC = (R_+ - n_+(n_+ + 1)/2) / (n_+ n_-), R_+ the sum of the positives' mid-ranks among all scores, i.e. the
    probability that a random positive scores above a random negative, ties counting one half. Equal to
    scikit-learn's `roc_auc_score`. With only one class present the AUC is undefined: NaN.
    """
    positive, scores = _labels_scores(labels, scores)
    n_positive = int(positive.sum())
    n_negative = positive.size - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def _bootstrap_weights(
    positive: np.ndarray, scores: np.ndarray, *, n_bootstrap: int, seed: int, clusters: npt.ArrayLike | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per chunk of replicates of `evaluators.statistics.bootstrap_samples`: (multiplicity of every positive
    sample, in np.flatnonzero order; total multiplicity of the negatives at each distinct negative score, in increasing
    score order)."""
    negative_values, negative_value_of = np.unique(scores[~positive], return_inverse=True)
    negative_value_of = negative_value_of.astype(np.int32)
    if clusters is None:
        n_positive = int(positive.sum())
        for drawn_positive, drawn_negative in class_or_cluster_draws(
            positive, n_bootstrap=n_bootstrap, seed=seed, clusters=None
        ):
            yield (
                multiplicities(drawn_positive, n_positive),
                multiplicities(negative_value_of[drawn_negative], negative_values.size),
            )
        return
    _, cluster_of = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(cluster_of.max()) + 1
    order = np.argsort(negative_value_of, kind="stable")
    value_starts = np.searchsorted(negative_value_of[order], np.arange(negative_values.size))
    for (drawn,) in class_or_cluster_draws(positive, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters):
        weights = multiplicities(drawn, n_clusters)
        negative_weights = weights[:, cluster_of[~positive][order]]
        yield weights[:, cluster_of[positive]], np.add.reduceat(negative_weights, value_starts, axis=1)


def _weighted_aucs(
    positive_scores: np.ndarray, negative_values: np.ndarray, positive_weights: np.ndarray,
    negative_value_weights: np.ndarray,
) -> np.ndarray:
    """AUC of each row of weights (multiplicities), ties half: Σ_i w_i C_i / (W_+ W_-), with C_i the weighted
    count of negatives scoring below positive i plus half of those scoring equal (`negative_values`: the distinct
    negative scores, increasing). Integer weights keep every sum exact up to the final division."""
    cumulative = np.zeros(
        (negative_value_weights.shape[0], negative_values.size + 1), dtype=negative_value_weights.dtype
    )
    np.cumsum(negative_value_weights, axis=1, out=cumulative[:, 1:])
    below = cumulative[:, np.searchsorted(negative_values, positive_scores, side="left")]
    below += cumulative[:, np.searchsorted(negative_values, positive_scores, side="right")]
    numerator = np.einsum("ij,ij->i", positive_weights, below) / 2
    denominator = positive_weights.sum(axis=1).astype(np.float64) * cumulative[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def roc_auc_ci(
    labels: npt.ArrayLike, scores: npt.ArrayLike, *, n_bootstrap: int = 2000, seed: int = 0,
    clusters: npt.ArrayLike | None = None, confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(AUC, lower, upper): the Mann-Whitney AUC and its percentile bootstrap interval.

    Resampling as `evaluators.statistics.bootstrap_samples` (stratified by class, or clustered by `clusters`, e.g.
    patient ids at vertebra level). Each replicate's AUC is computed from sample multiplicities, a chunk of replicates
    at once, without
    materialising or re-sorting any resample. Clustered replicates that hold a single class have no AUC and are
    left out. The bounds are the (1-confidence)/2 and (1+confidence)/2 quantiles (linear interpolation) of the
    replicate AUCs. NaN bounds when the AUC itself is undefined.
    """
    positive, scores = _labels_scores(labels, scores)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence}")
    if clusters is not None and np.asarray(clusters).size != positive.size:
        raise ValueError(
            f"clusters: expected {positive.size} cluster ids, one per score, got {np.asarray(clusters).size}"
        )
    auc = roc_auc(positive, scores)
    if np.isnan(auc):
        return auc, float("nan"), float("nan")
    negative_values = np.unique(scores[~positive])
    replicates = [
        _weighted_aucs(scores[positive], negative_values, positive_weights, negative_value_weights)
        for positive_weights, negative_value_weights in _bootstrap_weights(
            positive, scores, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters
        )
    ]
    values = np.concatenate(replicates)
    values = values[~np.isnan(values)]
    tail = (1 - confidence) / 2
    lower, upper = np.percentile(values, [100 * tail, 100 * (1 - tail)])
    return auc, float(lower), float(upper)


def roc_curve(labels: npt.ArrayLike, scores: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds): one point per distinct score, thresholds descending, predicting positive when
    score >= threshold; the first point (0, 0) has threshold +inf. Same points as scikit-learn's `roc_curve` with
    `drop_intermediate=False`. Undefined rates (a class absent) are NaN."""
    positive, scores = _labels_scores(labels, scores)
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_positive = scores[order], positive[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_scores)), sorted_scores.size - 1]
    true_positives = np.r_[0, np.cumsum(sorted_positive)[last_of_value]]
    false_positives = np.r_[0, (last_of_value + 1) - true_positives[1:]]
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = true_positives / positive.sum()
        fpr = false_positives / (~positive).sum()
    return fpr, tpr, np.r_[np.inf, sorted_scores[last_of_value]]


def roc_convex_hull(points: npt.ArrayLike) -> np.ndarray:
    """Upper convex hull of ROC points (fpr, tpr) together with (0, 0) and (1, 1), as (k, 2) vertices by
    increasing fpr: the operating points reachable by choosing among, or randomly mixing, a family of classifiers
    (Provost & Fawcett). Collinear points are dropped."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points: expected (n, 2) ROC points (fpr, tpr), got shape {points.shape}")
    candidates = np.unique(np.vstack([points, [[0.0, 0.0], [1.0, 1.0]]]), axis=0)
    hull: list[np.ndarray] = []
    for point in candidates[np.lexsort((-candidates[:, 1], candidates[:, 0]))]:
        if hull and point[0] == hull[-1][0]:
            continue  # same fpr, lower tpr: never on the upper hull
        while len(hull) >= 2:
            (x1, y1), (x2, y2) = hull[-2], hull[-1]
            if (x2 - x1) * (point[1] - y1) - (y2 - y1) * (point[0] - x1) >= 0:
                hull.pop()  # hull[-1] lies on or below the chord hull[-2] -> point
            else:
                break
        hull.append(point)
    return np.array(hull)


def _ratio(numerator: float, denominator: float, *, undefined: float) -> float:
    return undefined if denominator == 0 else numerator / denominator


def binary_scores(labels: npt.ArrayLike, scores: npt.ArrayLike, *, threshold: float) -> dict[str, float]:
    """Scores of the decision `score >= threshold`, from the counts TP, FP, TN, FN:

    recall = TP/(TP+FN), precision = TP/(TP+FP), F1 = 2PR/(P+R), specificity = TN/(TN+FP).
    Rules for 0/0: recall and specificity are NaN (the class is absent), precision is 0 (nothing predicted
    positive), F1 is 0 when precision + recall = 0 and NaN when recall is NaN.
    """
    positive, scores = _labels_scores(labels, scores)
    predicted = scores >= threshold
    true_positive = int(np.sum(predicted & positive))
    false_positive = int(np.sum(predicted & ~positive))
    true_negative = int(np.sum(~predicted & ~positive))
    false_negative = int(np.sum(~predicted & positive))
    recall = _ratio(true_positive, true_positive + false_negative, undefined=float("nan"))
    precision = _ratio(true_positive, true_positive + false_positive, undefined=0.0)
    if np.isnan(recall):
        f1 = float("nan")
    else:
        f1 = _ratio(2 * precision * recall, precision + recall, undefined=0.0)
    specificity = _ratio(true_negative, true_negative + false_positive, undefined=float("nan"))
    return {"recall": recall, "precision": precision, "f1": f1, "specificity": specificity}


def recall_per_grade(grades: npt.ArrayLike, scores: npt.ArrayLike, *, threshold: float) -> dict[int, float]:
    """{grade: fraction of the vertebrae of that grade with score >= threshold} for every grade >= 1 present
    (Genant grades 1-3: the sensitivity for mild, moderate and severe fractures)."""
    grades = np.asarray(grades)
    scores = np.asarray(scores, dtype=np.float64)
    if grades.shape != scores.shape or grades.ndim != 1:
        raise ValueError(
            f"grades and scores: expected two 1-D arrays of one length, got {grades.shape} and {scores.shape}"
        )
    return {
        int(grade): float(np.mean(scores[grades == grade] >= threshold)) for grade in np.unique(grades) if grade >= 1
    }
