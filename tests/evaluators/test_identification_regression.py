"""Identification hand-worked cases (including the neighbour swap) and SMAPE / MAE hand-worked values."""

import math

import numpy as np
import pytest

from evaluators import metrics

TRUTH = {"T11": (0.0, 0.0), "T12": (0.0, 30.0), "L1": (0.0, 62.0)}


def test_all_identified_with_localisation_statistics():
    predicted = {"T11": (3.0, 4.0), "T12": (0.0, 30.0), "L1": (6.0, 70.0)}  # distances 5, 0, 10
    result = metrics.identification(TRUTH, predicted)
    assert result.rate == 1.0
    assert result.identified == ("T11", "T12", "L1") and result.missed == () and result.extra == ()
    assert result.localisation_mean == pytest.approx(5.0)
    assert result.localisation_std == pytest.approx(math.sqrt((0 + 25 + 25) / 3))


def test_neighbour_swap_is_two_misses():
    predicted = {"T11": (0.0, 28.0), "T12": (0.0, 2.0), "L1": (0.0, 62.0)}  # T11 and T12 swapped
    result = metrics.identification(TRUTH, predicted)
    assert result.identified == ("L1",)
    assert result.missed == ("T11", "T12")
    assert result.rate == pytest.approx(1 / 3)
    assert result.distances == {"T11": 28.0, "T12": 28.0, "L1": 0.0}


def test_nearest_is_searched_among_all_ground_truth_vertebrae():
    # Only T11 is predicted, but it lies nearer to ground-truth T12: not identified (the VerSe script, which
    # compares only with vertebrae the prediction names, would identify it at 18 mm).
    result = metrics.identification(TRUTH, {"T11": (0.0, 18.0)})
    assert result.identified == () and result.missed == ("T11", "T12", "L1")
    assert result.distances == {"T11": 18.0}


def test_distance_limit_and_extra_labels():
    predicted = {"T11": (0.0, -20.0), "T12": (21.0, 30.0), "L2": (0.0, 90.0), "L1": (0.0, 62.0)}
    result = metrics.identification(TRUTH, predicted)
    assert result.identified == ("T11", "L1")  # exactly 20 mm counts; T12 at 21 mm does not
    assert result.missed == ("T12",)
    assert result.extra == ("L2",)
    assert result.rate == pytest.approx(2 / 3)
    assert metrics.identification(TRUTH, predicted, max_distance_mm=25).identified == ("T11", "T12", "L1")


def test_equidistant_neighbour_is_not_an_identification():
    result = metrics.identification(TRUTH, {"T11": (0.0, 15.0)})
    assert result.identified == ()


def test_empty_cases():
    nothing = metrics.identification(TRUTH, {})
    assert nothing.rate == 0.0 and nothing.missed == ("T11", "T12", "L1") and math.isnan(nothing.localisation_mean)
    assert math.isnan(metrics.identification({}, {"T1": (0, 0)}).rate)


def test_smape_hand_worked():
    truth = [[10, 20, 5], [0, 0, 0], [30, 0, 10]]
    predicted = [[12, 18, 5], [0, 0, 0], [20, 10, 10]]
    # case 1: (2 + 2 + 0) / 70 = 5.714%; case 2: 0/0 counts 0; case 3: 20 / 80 = 25%
    np.testing.assert_allclose(metrics.smape_per_case(truth, predicted), [400 / 70, 0.0, 25.0])
    assert metrics.smape(truth, predicted) == pytest.approx((400 / 70 + 25) / 3)
    np.testing.assert_allclose(metrics.mean_absolute_error(truth, predicted), [4, 4, 0])


def test_smape_bad_shapes_and_values():
    with pytest.raises(ValueError, match=r"ground_truth: expected shape \(N, 3\)"):
        metrics.smape([[1, 2]], [[1, 2]])
    with pytest.raises(ValueError, match="predictions: expected shape"):
        metrics.smape([[1, 2, 3]], [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match="predictions: every angle"):
        metrics.smape([[1, 2, 3]], [[1, np.nan, 3]])
