"""ROC AUC, bootstrap intervals, ROC curve and hull, threshold scores against scikit-learn and hand-worked cases."""

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from evaluators import metrics, statistics


def labelled_scores(n, *, seed, ties=True):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    scores = rng.normal(labels * 0.8, 1.0)
    return labels, np.round(scores, 1) if ties else scores


@pytest.mark.parametrize("ties", [True, False])
@pytest.mark.parametrize("n", [7, 150, 3000])
def test_auc_equals_sklearn(n, ties):
    labels, scores = labelled_scores(n, seed=n, ties=ties)
    labels[:2] = [0, 1]
    assert metrics.roc_auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), rel=1e-13, abs=1e-15)


def test_auc_hand_worked_with_tie():
    # pairs (positive, negative): (0.8, 0.1) > , (0.8, 0.4) >, (0.4, 0.1) >, (0.4, 0.4) tie -> (3 + 0.5) / 4
    assert metrics.roc_auc([1, 1, 0, 0], [0.8, 0.4, 0.1, 0.4]) == 0.875


def test_single_class_auc_is_nan():
    assert math.isnan(metrics.roc_auc([1, 1, 1], [0.2, 0.5, 0.9]))
    auc, low, high = metrics.roc_auc_ci([0, 0], [0.1, 0.2], n_bootstrap=10)
    assert math.isnan(auc) and math.isnan(low) and math.isnan(high)


def sklearn_bootstrap_interval(labels, scores, *, n_bootstrap, seed, clusters=None, confidence=0.95):
    """The slow reference: scikit-learn's AUC on every resample drawn by the same sampler."""
    values = []
    for chunk in statistics.bootstrap_samples(labels, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters):
        for row in chunk:
            row = row[row >= 0]
            if len(np.unique(labels[row])) == 2:
                values.append(roc_auc_score(labels[row], scores[row]))
    tail = (1 - confidence) / 2
    return np.percentile(values, [100 * tail, 100 * (1 - tail)])


@pytest.mark.slow
def test_stratified_interval_equals_sklearn_loop():
    labels, scores = labelled_scores(300, seed=1)
    auc, low, high = metrics.roc_auc_ci(labels, scores, n_bootstrap=300, seed=4)
    expected = sklearn_bootstrap_interval(labels, scores, n_bootstrap=300, seed=4)
    np.testing.assert_allclose([low, high], expected, rtol=0, atol=1e-9)
    assert low < auc < high


@pytest.mark.slow
def test_clustered_interval_equals_sklearn_loop():
    labels, scores = labelled_scores(240, seed=2)
    patients = np.repeat(np.arange(40), 6)
    auc, low, high = metrics.roc_auc_ci(labels, scores, n_bootstrap=250, seed=9, clusters=patients, confidence=0.9)
    expected = sklearn_bootstrap_interval(labels, scores, n_bootstrap=250, seed=9, clusters=patients, confidence=0.9)
    np.testing.assert_allclose([low, high], expected, rtol=0, atol=1e-9)


def test_stratified_resamples_keep_class_counts_and_whole_clusters():
    labels = np.array([1, 0, 0, 1, 0, 0, 0])
    for chunk in statistics.bootstrap_samples(labels, n_bootstrap=30, seed=0):
        assert np.all(labels[chunk].sum(axis=1) == 2)
    clusters = np.array([0, 0, 1, 1, 1, 2, 2])
    for chunk in statistics.bootstrap_samples(labels, n_bootstrap=30, seed=0, clusters=clusters):
        for row in chunk:
            row = row[row >= 0]
            counts = np.bincount(row, minlength=7)
            for cluster in range(3):  # every member of a cluster drawn equally often
                assert len(set(counts[clusters == cluster])) == 1


def test_interval_is_reproducible_with_seed():
    labels, scores = labelled_scores(100, seed=3)
    assert metrics.roc_auc_ci(labels, scores, n_bootstrap=100, seed=1) == metrics.roc_auc_ci(
        labels, scores, n_bootstrap=100, seed=1
    )


def test_roc_curve_equals_sklearn():
    labels, scores = labelled_scores(200, seed=6)
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)
    expected_fpr, expected_tpr, expected_thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, expected_fpr)
    np.testing.assert_allclose(tpr, expected_tpr)
    assert thresholds[0] == np.inf
    np.testing.assert_allclose(thresholds[1:], expected_thresholds[1:])


def test_convex_hull_hand_worked():
    points = [(0.1, 0.5), (0.2, 0.6), (0.3, 0.9), (0.5, 0.92), (0.6, 0.95), (0.4, 0.4), (0.3, 0.7)]
    hull = metrics.roc_convex_hull(points)
    # (0.2, 0.6) lies below the chord (0.1, 0.5)-(0.3, 0.9); (0.5, 0.92) below (0.3, 0.9)-(1, 1)? 0.9 + 0.2*0.1/0.7
    # = 0.9286 > 0.92, so it is dropped; (0.6, 0.95): 0.9 + 0.3/7 = 0.9429 < 0.95, kept.
    np.testing.assert_allclose(hull, [(0, 0), (0.1, 0.5), (0.3, 0.9), (0.6, 0.95), (1, 1)])


def test_binary_scores_equal_sklearn_and_hand_specificity():
    labels, scores = labelled_scores(120, seed=8)
    probabilities = 1 / (1 + np.exp(-scores))
    result = metrics.binary_scores(labels, probabilities, threshold=0.5)
    predicted = probabilities >= 0.5
    assert result["recall"] == pytest.approx(recall_score(labels, predicted))
    assert result["precision"] == pytest.approx(precision_score(labels, predicted))
    assert result["f1"] == pytest.approx(f1_score(labels, predicted))
    negatives = labels == 0
    assert result["specificity"] == pytest.approx(np.mean(~predicted[negatives]))


def test_binary_scores_zero_division_rules():
    result = metrics.binary_scores([0, 0, 1], [0.1, 0.2, 0.3], threshold=0.5)
    assert result["precision"] == 0.0 and result["recall"] == 0.0 and result["f1"] == 0.0
    no_positives = metrics.binary_scores([0, 0], [0.1, 0.9], threshold=0.5)
    assert math.isnan(no_positives["recall"]) and math.isnan(no_positives["f1"])
    assert no_positives["specificity"] == 0.5


def test_recall_per_grade_hand_worked():
    grades = [0, 1, 1, 2, 3, 3, 3]
    scores = [0.9, 0.6, 0.2, 0.1, 0.7, 0.8, 0.4]
    assert metrics.recall_per_grade(grades, scores, threshold=0.5) == {1: 0.5, 2: 0.0, 3: pytest.approx(2 / 3)}


def test_bad_labels_are_named():
    with pytest.raises(ValueError, match="labels: expected only 0"):
        metrics.roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="scores: every score"):
        metrics.roc_auc([0, 1], [0.1, np.nan])
