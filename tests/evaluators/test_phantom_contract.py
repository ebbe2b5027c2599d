"""The data contract with the phantom generators (docs/formats.md): every task's generated test split is read by
the evaluators, and its own ground truth written back as predictions scores perfectly."""

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

import phantoms
from evaluators import formats
from evaluators.tasks import TASKS, evaluate

PERFECT = {
    "aasce-cobb": {"smape": 0.0, "mae_pt": 0.0},
    "vertebra-labelling-xr": {"id_rate": 1.0, "loc_mean_mm": 0.0, "false_detections": 0.0},
    "fracture-ct": {"auc_patient": 1.0, "auc_vertebra": 1.0, "f1_vertebra": 1.0},
    "metastatic-body-ct": {"dice": 1.0, "concurrency": 1.0, "dice@translated+resampled": 1.0},
    "lumbosacral-ct": {"dice_mean": 1.0, "assd_mean": 0.0, "dice_nerve@cross-dataset": 1.0},
}


def as_predictions(task, truth):
    if task in formats.SEGMENTATION_TASKS:
        return {case_id: sitk.ReadImage(str(path)) for case_id, path in truth.items()}
    if task == "fracture-ct":
        return {
            c: {"vertebrae": {k: float(g >= 1) for k, g in v["vertebrae"].items()}, "patient": None}
            for c, v in truth.items()
        }
    return truth


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generated_test_split_scores_its_own_ground_truth_perfectly(task, tmp_path):
    dataset = phantoms.generate(task, out=tmp_path / "data", cases=3, seed=0, domain="test", small=True, progress=False)
    truth = formats.load_ground_truth(task, dataset)
    folder = formats.write_predictions(task, as_predictions(task, truth), tmp_path / "pred")
    result = evaluate(task, predictions=folder, ground_truth=dataset)
    aggregates = result["aggregates"]
    for key, value in PERFECT[task].items():
        assert aggregates[key] == pytest.approx(value, abs=1e-9), key
    declared = {metric.key for metric in TASKS[task].metrics}
    produced = {key.split("@")[0] for key in aggregates} | {key for case in result["case"].values() for key in case}
    assert produced <= declared  # every key has a registered title and direction
    assert {key for key in aggregates if "@" not in key} == declared


def test_aasce_angles_from_landmarks_match_the_angles_file(tmp_path):
    dataset = phantoms.generate("aasce-cobb", out=tmp_path / "data", cases=4, seed=1, small=True, progress=False)
    from_angles = formats.load_ground_truth("aasce-cobb", dataset)
    (dataset / "ground_truth" / "angles.csv").unlink()
    from_landmarks = formats.load_ground_truth("aasce-cobb", dataset)
    for case_id, value in from_angles.items():
        # the files hold rounded numbers (landmarks to 1e-3 px, angles to 1e-4 deg): agreement to 0.01 deg
        np.testing.assert_allclose(from_landmarks[case_id]["angles"], value["angles"], atol=1e-2)
    shutil.rmtree(dataset)
