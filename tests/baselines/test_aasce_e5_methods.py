"""AASCE methods 1-4 end to end with the `tiny` preset through baselines.api: training lowers the loss, predictions
have the task's format, and nothing depends on the hidden ground truth (deleted or shuffled labels change nothing)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from baselines import api
from evaluators.formats import load_predictions
from evaluators.layout import read_manifest
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

METHODS = ("detector-corners", "top-down", "seg4reg", "keypoint-fusion")


@pytest.fixture(scope="module", params=METHODS)
def trained(request, aasce_train, tmp_path_factory):
    folder = tmp_path_factory.mktemp(request.param)
    checkpoint = api.train(
        "aasce-cobb",
        request.param,
        preset="tiny",
        data_dir=aasce_train,
        out=folder / "model.pt",
        device="cpu",
        progress=False,
    )
    return request.param, checkpoint, folder


def test_tiny_training_lowers_the_loss(trained):
    method, checkpoint, _ = trained
    stored = torch.load(checkpoint, weights_only=True)
    assert stored["task"] == "aasce-cobb" and stored["method"] == method and stored["preset"] == "tiny"
    losses = np.asarray(stored["losses"], dtype=float)
    assert len(losses) >= 5 and np.isfinite(losses).all()
    assert losses[-3:].mean() < losses[0], f"{method}: loss did not fall ({losses.round(3).tolist()})"
    for stage, values in stored.get("stage_losses", {}).items():
        assert np.isfinite(values).all(), f"{method}: non-finite {stage} loss"


def _predict(method, checkpoint, data_dir, out):
    path = api.predict(
        "aasce-cobb", method, checkpoint=checkpoint, data_dir=data_dir, out=out, device="cpu", progress=False
    )
    return pd.read_csv(path, dtype={"case_id": str}).set_index("case_id")


def test_predictions_are_valid_and_blind_to_hidden_labels(trained, aasce_test, tmp_path):
    method, checkpoint, _ = trained
    reference = _predict(method, checkpoint, aasce_test, tmp_path / "pred.csv")
    case_ids = read_manifest(aasce_test).case_ids
    assert list(reference.index) == case_ids
    values = reference[["pt", "mt", "tl"]].to_numpy()
    assert np.isfinite(values).all() and (values >= 0).all()
    loaded = load_predictions("aasce-cobb", tmp_path / "pred.csv", case_ids=case_ids)
    assert set(loaded) == set(case_ids)

    no_labels = without_ground_truth(aasce_test, tmp_path / "no_labels")
    pd.testing.assert_frame_equal(_predict(method, checkpoint, no_labels, tmp_path / "blind.csv"), reference)

    shuffled = tmp_path / "shuffled"
    shutil.copytree(aasce_test, shuffled)
    for name in ("angles.csv", "landmarks.csv"):
        frame = pd.read_csv(shuffled / "ground_truth" / name, dtype={"case_id": str})
        frame["case_id"] = frame["case_id"].sample(frac=1.0, random_state=1).to_numpy()
        frame.to_csv(shuffled / "ground_truth" / name, index=False)
    pd.testing.assert_frame_equal(_predict(method, checkpoint, shuffled, tmp_path / "shuffled.csv"), reference)


def test_case_folder_predictions(trained, aasce_test, tmp_path):
    method, checkpoint, _ = trained
    out = api.predict(
        "aasce-cobb",
        method,
        checkpoint=checkpoint,
        data_dir=aasce_test,
        out=tmp_path / "folder",
        device="cpu",
        progress=False,
    )
    case_ids = read_manifest(aasce_test).case_ids
    loaded = load_predictions("aasce-cobb", out, case_ids=case_ids)
    for case_id in case_ids:
        angles = np.asarray(loaded[case_id]["angles"], dtype=float)
        assert angles.shape == (3,) and np.isfinite(angles).all() and (angles >= 0).all()
