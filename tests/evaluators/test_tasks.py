"""End-to-end evaluation per task (values compared with MedPy / scikit-learn / hand computation), the registry,
group aggregates and the CLI."""

import json

import numpy as np
import pytest
from medpy.metric.binary import assd as medpy_assd
from medpy.metric.binary import dc as medpy_dc
from sklearn.metrics import roc_auc_score

from evaluators import cli, formats
from evaluators.tasks import TASKS, evaluate, get_task

from .conftest import image


def test_registry_is_complete_and_consistent():
    assert set(TASKS) == {"aasce-cobb", "fracture-ct", "metastatic-body-ct", "vertebra-labelling-xr", "lumbosacral-ct"}
    for task in TASKS.values():
        keys = [metric.key for metric in task.metrics]
        assert task.primary in keys and len(keys) == len(set(keys))
        assert all(metric.direction in ("higher", "lower") for metric in task.metrics)
        assert task.input_kind in ("2d-radiograph", "3d-ct")
        assert task.output_files and set(task.prediction_formats) <= {"csv", "case-folder"}
    assert [m.key for m in get_task("aasce-cobb").metrics] == ["smape", "mae_pt", "mae_mt", "mae_tl"]
    assert get_task("aasce-cobb").metric("smape@given").direction == "lower"
    with pytest.raises(KeyError, match="unknown task"):
        get_task("nope")


def test_aasce_csv_and_folder_agree_and_groups(make_dataset, tmp_path):
    truth = {"a1": [10, 20, 5], "a2": [30, 12, 8], "a3": [0, 0, 0]}
    dataset = make_dataset("aasce-cobb", truth, groups={"a1": "x", "a2": "y", "a3": "y"})
    predicted = {"a1": [12, 18, 5], "a2": [25, 15, 8], "a3": [0, 0, 0]}
    csv_path = formats.write_predictions(
        "aasce-cobb", {c: {"angles": np.array(a)} for c, a in predicted.items()}, tmp_path / "p.csv"
    )
    folder = formats.write_predictions(
        "aasce-cobb", {c: {"angles": np.array(a)} for c, a in predicted.items()}, tmp_path / "pred"
    )
    from_csv = evaluate("aasce-cobb", predictions=csv_path, ground_truth=dataset)
    from_folder = evaluate("aasce-cobb", predictions=folder, ground_truth=dataset / "ground_truth")
    assert from_csv == from_folder
    mounted = tmp_path / "mounted"
    mounted.mkdir()
    (mounted / "anything.csv").write_bytes(csv_path.read_bytes())
    assert evaluate("aasce-cobb", predictions=mounted, ground_truth=dataset) == from_csv
    per_case = [100 * 4 / 70, 100 * 8 / 98, 0.0]
    assert from_csv["aggregates"]["smape"] == pytest.approx(np.mean(per_case))
    assert from_csv["aggregates"]["smape@x"] == pytest.approx(per_case[0])
    assert from_csv["aggregates"]["smape@y"] == pytest.approx(np.mean(per_case[1:]))
    assert from_csv["aggregates"]["mae_pt"] == pytest.approx(7 / 3)
    assert from_csv["case"]["a2"]["mae_mt"] == 3.0


def test_aasce_landmarks_folder_uses_cobb(make_dataset, tmp_path):
    from .test_cobb import C_TILTS, c_bulge, spine

    dataset = make_dataset("aasce-cobb", {"a1": [35, 15, 20]})
    landmarks = spine(C_TILTS, c_bulge(drift=-1.0))
    folder = tmp_path / "pred" / "a1"
    folder.mkdir(parents=True)
    (folder / "landmarks.json").write_text(json.dumps({"landmarks": landmarks.tolist(), "image_height": 2000}))
    result = evaluate("aasce-cobb", predictions=tmp_path / "pred", ground_truth=dataset)
    assert result["aggregates"]["smape"] == pytest.approx(0.0, abs=1e-5)


def test_fracture_auc_equals_sklearn_with_patient_max_rule(make_dataset, tmp_path):
    rng = np.random.default_rng(0)
    names = ["T11", "T12", "L1", "L2"]
    truth, predictions = {}, {}
    for index in range(30):
        grades = {name: int(rng.choice([0, 0, 0, 1, 2, 3])) for name in names}
        truth[f"p{index:02d}"] = grades
        vertebrae = {name: float(np.clip(0.3 * (g > 0) + rng.random() * 0.7, 0, 1)) for name, g in grades.items()}
        predictions[f"p{index:02d}"] = {"vertebrae": vertebrae, "patient": 0.95 if index == 0 else None}
    dataset = make_dataset("fracture-ct", truth)
    path = formats.write_predictions("fracture-ct", predictions, tmp_path / "fractures.csv")
    result = evaluate("fracture-ct", predictions=path, ground_truth=dataset)
    aggregates = result["aggregates"]
    vertebra_labels = [int(truth[c][n] >= 1) for c in truth for n in names]
    vertebra_scores = [predictions[c]["vertebrae"][n] for c in truth for n in names]
    assert aggregates["auc_vertebra"] == pytest.approx(roc_auc_score(vertebra_labels, vertebra_scores), rel=1e-12)
    patient_labels = [int(max(truth[c].values()) >= 1) for c in truth]
    patient_scores = [0.95] + [max(predictions[c]["vertebrae"].values()) for c in list(truth)[1:]]
    assert aggregates["auc_patient"] == pytest.approx(roc_auc_score(patient_labels, patient_scores), rel=1e-12)
    assert aggregates["auc_vertebra_ci_low"] <= aggregates["auc_vertebra"] <= aggregates["auc_vertebra_ci_high"]
    grade3 = [predictions[c]["vertebrae"][n] >= 0.5 for c in truth for n in names if truth[c][n] == 3]
    assert aggregates["recall_grade3"] == pytest.approx(np.mean(grade3))
    assert set(result["curves"]) == {"patient", "vertebra"} and result["curves"]["patient"]["thresholds"][0] is None
    assert set(result["case"]["p00"]) == {"accuracy_patient", "accuracy_vertebra"}
    hits = [(predictions[c]["vertebrae"][n] >= 0.5) == (truth[c][n] >= 1) for c in truth for n in names]
    assert aggregates["accuracy_vertebra"] == pytest.approx(np.mean(hits))
    assert result["case"]["p00"]["accuracy_patient"] == float((0.95 >= 0.5) == patient_labels[0])


def test_fracture_missing_vertebra_is_named(make_dataset, tmp_path):
    dataset = make_dataset("fracture-ct", {"p1": {"T12": 1, "L1": 0}})
    path = tmp_path / "f.csv"
    path.write_text("case_id,vertebra,probability\np1,T12,0.8\n")
    with pytest.raises(formats.PredictionError, match="p1: no probability for vertebra\\(e\\) L1"):
        evaluate("fracture-ct", predictions=path, ground_truth=dataset)


def segmentation_pair(rng, shape, labels):
    reference = np.zeros(shape, np.uint8)
    prediction = np.zeros(shape, np.uint8)
    for label in labels:
        centre = rng.integers(4, np.array(shape) - 4)
        for target, jitter in ((reference, 0), (prediction, 1)):
            grid = np.indices(shape)
            radius = 3 + jitter * rng.integers(0, 2)
            offset = jitter * rng.integers(-1, 2, size=3)
            target[sum((g - c - o) ** 2 for g, c, o in zip(grid, centre, offset)) <= radius**2] = label
    return reference, prediction


def test_metastatic_dice_equals_medpy_with_groups(make_dataset, tmp_path):
    rng = np.random.default_rng(1)
    spacing = (1.0, 1.0, 1.0)
    truth, predictions, expected = {}, {}, {}
    for case_id in ("m1", "m2", "m3"):
        reference, prediction = segmentation_pair(rng, (16, 18, 20), [1])
        truth[case_id] = image(reference, spacing=spacing)
        predictions[case_id] = image(prediction, spacing=spacing)
        expected[case_id] = medpy_dc(prediction, reference)
    groups = {"m1": "given", "m2": "translated", "m3": "translated"}
    dataset = make_dataset("metastatic-body-ct", truth, groups)
    folder = formats.write_predictions("metastatic-body-ct", predictions, tmp_path / "pred")
    result = evaluate("metastatic-body-ct", predictions=folder, ground_truth=dataset)
    for case_id, value in expected.items():
        assert result["case"][case_id]["dice"] == pytest.approx(value, rel=1e-12)
    assert result["aggregates"]["dice@translated"] == pytest.approx((expected["m2"] + expected["m3"]) / 2)
    assert result["aggregates"]["dice"] == pytest.approx(np.mean(list(expected.values())))


def test_lumbosacral_assd_in_voxels_and_undefined_count(make_dataset, tmp_path):
    rng = np.random.default_rng(2)
    spacing = (1.0, 0.5, 0.5)
    reference, prediction = segmentation_pair(rng, (16, 20, 20), [1, 2, 3])
    other_reference, other_prediction = segmentation_pair(rng, (16, 20, 20), [1, 2])
    other_prediction[2:4, 2:4, 2:4] = 3  # nerve predicted where the reference has none: ASSD undefined
    truth = {"l1": image(reference, spacing=spacing), "l2": image(other_reference, spacing=spacing)}
    predictions = {"l1": image(prediction, spacing=spacing), "l2": image(other_prediction, spacing=spacing)}
    dataset = make_dataset("lumbosacral-ct", truth, {"l1": "in-domain", "l2": "cross-dataset"})
    folder = formats.write_predictions("lumbosacral-ct", predictions, tmp_path / "pred")
    result = evaluate("lumbosacral-ct", predictions=folder, ground_truth=dataset)
    for label, name in ((1, "bone"), (2, "disc"), (3, "nerve")):
        expected = medpy_assd(prediction == label, reference == label)  # voxel units, no spacing
        assert result["case"]["l1"][f"assd_{name}"] == pytest.approx(expected, rel=1e-6)
        assert result["case"]["l1"][f"dice_{name}"] == pytest.approx(medpy_dc(prediction == label, reference == label))
    assert result["case"]["l2"]["assd_nerve"] is None
    assert result["aggregates"]["assd_nerve"] == result["case"]["l1"]["assd_nerve"]
    assert result["aggregates"]["assd_nerve_undefined"] == 1.0
    assert result["aggregates"]["assd_nerve_undefined@cross-dataset"] == 1.0
    assert result["aggregates"]["dice_nerve@cross-dataset"] == 0.0


def test_labelling_pooled_rate_and_views(make_dataset, tmp_path):
    truth = {
        "x1": ({"T12": [0, 0], "L1": [0, 30], "L2": [0, 60]}, "coronal"),
        "x2": ({"L4": [0, 0], "L5": [0, 35]}, "sagittal"),
    }
    dataset = make_dataset("vertebra-labelling-xr", truth)
    path = tmp_path / "c.csv"
    path.write_text("case_id,vertebra,x,y\nx1,T12,3,4\nx1,L1,0,30\nx1,L3,0,90\nx2,L4,0,33\nx2,L5,0,2\n")
    result = evaluate("vertebra-labelling-xr", predictions=path, ground_truth=dataset)
    aggregates = result["aggregates"]
    assert aggregates["id_rate"] == pytest.approx(2 / 5)  # pooled: T12 and L1 of 5 vertebrae
    assert aggregates["id_rate@coronal"] == pytest.approx(2 / 3) and aggregates["id_rate@sagittal"] == 0.0
    assert aggregates["false_detections"] == 1.0
    assert aggregates["loc_mean_mm"] == pytest.approx(np.mean([5, 0, 33, 33]))
    assert result["case"]["x2"]["id_rate"] == 0.0


def test_cli_writes_the_same_metrics(make_dataset, tmp_path, capsys):
    dataset = make_dataset("aasce-cobb", {"a1": [10, 20, 5]})
    path = tmp_path / "p.csv"
    path.write_text("case_id,pt,mt,tl\na1,11,20,5\n")
    output = tmp_path / "out" / "metrics.json"
    code = cli.main(
        [
            "evaluate",
            "aasce-cobb",
            "--predictions",
            str(path),
            "--ground-truth",
            str(dataset),
            "--output",
            str(output),
            "--quiet",
        ]
    )
    assert code == 0
    assert json.loads(output.read_text()) == evaluate("aasce-cobb", predictions=path, ground_truth=dataset)


def test_cli_bad_input_is_one_line_exit_2(make_dataset, tmp_path, capsys):
    dataset = make_dataset("aasce-cobb", {"a1": [10, 20, 5]})
    path = tmp_path / "p.csv"
    path.write_text("case_id,pt,mt,tl\na1,11,nan,5\n")
    code = cli.main(
        [
            "evaluate",
            "aasce-cobb",
            "--predictions",
            str(path),
            "--ground-truth",
            str(dataset),
            "--output",
            str(tmp_path / "m.json"),
        ]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert error == ["error: p.csv line 2: mt must be a finite number, got 'nan'"]
    assert not (tmp_path / "m.json").exists()


def test_geometry_mismatch_names_case_and_difference(make_dataset, tmp_path):
    reference = np.zeros((8, 9, 10), np.uint8)
    reference[2:5, 2:5, 2:5] = 1
    dataset = make_dataset("metastatic-body-ct", {"m1": image(reference, spacing=(1.0, 1.0, 1.0))})
    for predicted, message in (
        (image(reference, spacing=(1.0, 1.0, 2.0)), r"m1/segmentation.nii.gz: spacing \(1.0, 1.0, 2.0\) differs"),
        (
            image(reference[:, :, :9]),
            r"m1/segmentation.nii.gz: size \(9, 9, 8\) differs from the input image's \(10, 9, 8\)",
        ),
        (image(reference, origin=(0.0, 5.0, 0.0)), r"origin \(0.0, 5.0, 0.0\) differs"),
        (image(reference * 2), r"m1/segmentation.nii.gz: unexpected label value\(s\) \[2\]; allowed \[0, 1\]"),
    ):
        folder = formats.write_predictions("metastatic-body-ct", {"m1": predicted}, tmp_path / "pred")
        with pytest.raises(formats.PredictionError, match=message):
            evaluate("metastatic-body-ct", predictions=folder, ground_truth=dataset)
    flipped = image(reference)
    flipped.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    folder = formats.write_predictions("metastatic-body-ct", {"m1": flipped}, tmp_path / "pred")
    with pytest.raises(formats.PredictionError, match="direction"):
        evaluate("metastatic-body-ct", predictions=folder, ground_truth=dataset)


@pytest.mark.slow
def test_cli_module_in_a_fresh_process_prints_no_traceback(make_dataset, tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    dataset = make_dataset("aasce-cobb", {"a1": [10, 20, 5]})
    path = tmp_path / "p.csv"
    path.write_text("case_id,pt,mt,tl\na2,1,2,3\n")
    root = Path(__file__).resolve().parents[2]
    completed = subprocess.run(
        [sys.executable, "-m", "evaluators.cli", "evaluate", "aasce-cobb", "--predictions", str(path),
         "--ground-truth", str(dataset), "--output", str(tmp_path / "m.json")],
        cwd=root, capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == "error: p.csv: unknown case(s) 'a2' (not in this phase's test set)"
    assert "Traceback" not in completed.stderr
