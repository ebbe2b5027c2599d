"""The trivial reference predictors: valid predictions for every test case of every task, learnt from the training
split only, and worse than the ground truth but better than nonsense where that is checkable by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import phantoms
from baselines import references
from evaluators.formats import write_predictions
from evaluators.layout import ground_truth_dir
from evaluators.tasks import get_task

TASKS = ["aasce-cobb", "metastatic-body-ct", "vertebra-labelling-xr", "lumbosacral-ct", "fracture-ct"]


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("references")

    def make(task):
        train = phantoms.generate(task, out=root / task / "train", cases=4, seed=1, small=True, progress=False)
        test = phantoms.generate(task, out=root / task / "test", cases=3, seed=2, small=True, progress=False)
        return train, test

    return make


@pytest.mark.parametrize("task", TASKS)
def test_reference_predicts_every_test_case_in_the_task_format(task, splits, tmp_path):
    train, test = splits(task)
    # Hide the test ground truth while predicting: a reference that reads it fails here.
    hidden = test.parent / "hidden-ground-truth"
    (test / "ground_truth").rename(hidden)
    try:
        predictions = references.predict_reference(task, train_dir=train, test_dir=test)
    finally:
        hidden.rename(test / "ground_truth")
    assert sorted(predictions) == sorted(phantoms_case_ids(test))
    out = write_predictions(task, predictions, tmp_path / "predictions")
    metrics = get_task(task).evaluate(predictions=out, ground_truth=test)
    assert metrics["aggregates"] and sorted(metrics["case"]) == sorted(predictions)


def phantoms_case_ids(folder):
    from evaluators.layout import read_manifest

    return read_manifest(folder).case_ids


def test_training_mean_is_the_mean_of_the_training_angles(splits):
    train, test = splits("aasce-cobb")
    table = pd.read_csv(ground_truth_dir(train) / "angles.csv")
    expected = [table[column].sum() / len(table) for column in ("pt", "mt", "tl")]
    predictions = references.training_mean(train, test)
    for prediction in predictions.values():
        assert np.allclose(prediction["angles"], expected)


def test_youden_threshold_hand_worked():
    # Scores of 3 negatives (1, 2, 3) and 2 positives (4, 5): predicting positive at >= 4 is perfect (J = 1).
    labels = np.array([False, False, False, True, True])
    assert references._youden_threshold(labels, np.array([1.0, 2.0, 3.0, 4.0, 5.0])) == 4.0
    # Positives at 2 and 5, negatives at 1, 3, 3.5: >= 2 gives J = 1 - 2/3 = 1/3, >= 3 gives 1/2 - 2/3 < 0,
    # >= 5 gives 1/2 - 0 = 1/2 (the best), >= 1 gives 1 - 1 = 0.
    labels = np.array([False, True, False, False, True])
    assert references._youden_threshold(labels, np.array([1.0, 2.0, 3.0, 3.5, 5.0])) == 5.0


def test_fracture_probabilities_are_monotone_in_density_score(splits):
    train, test = splits("fracture-ct")
    scores = references.density_scores(test)
    predictions = references.trabecular_density(train, test)
    pairs = sorted((scores[c][n], predictions[c]["vertebrae"][n]) for c in scores for n in scores[c])
    probabilities = [p for _, p in pairs]
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert probabilities == sorted(probabilities)
    for prediction in predictions.values():
        assert prediction["patient"] == max(prediction["vertebrae"].values())
