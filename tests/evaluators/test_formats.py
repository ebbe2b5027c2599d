"""Bad predictions give one clear message naming the file, line or case and what was expected, never ground-truth
values; writers and readers round-trip."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from evaluators import formats
from evaluators.errors import GroundTruthError, PredictionError
from evaluators.tasks import evaluate

from .conftest import image

SECRET_ANGLES = [37.25, 21.125, 9.0625]  # distinctive ground-truth values that must never appear in a message


@pytest.fixture
def aasce(make_dataset):
    return make_dataset("aasce-cobb", {"c1": SECRET_ANGLES, "c2": SECRET_ANGLES})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "p.csv: the file is empty; expected a header row case_id,pt,mt,tl"),
        ("case_id,pt,mt\nc1,1,2\n", "p.csv: missing column(s) tl; expected header case_id,pt,mt,tl"),
        ("case_id,pt,mt,tl\nc1,1,2,3\n", "p.csv: no prediction for case(s) 'c2'"),
        (
            "case_id,pt,mt,tl\nc1,1,2,3\nc2,1,2,3\nc9,1,2,3\n",
            "p.csv: unknown case(s) 'c9' (not in this phase's test set)",
        ),
        ("case_id,pt,mt,tl\nc1,1,2,3\nc1,1,2,3\n", "p.csv line 3: duplicate case 'c1'"),
        ("case_id,pt,mt,tl\nc1,1,2,3\nc2,1,,3\n", "p.csv line 3: mt '' is not a number"),
        ("case_id,pt,mt,tl\nc1,1,2,inf\nc2,1,2,3\n", "p.csv line 2: tl must be a finite number, got 'inf'"),
        ("case_id,pt,mt,tl\nc1,-1,2,3\nc2,1,2,3\n", "p.csv line 2: Cobb angles must be non-negative degrees"),
        ("case_id,pt,mt,tl\nc 1,1,2,3\n", "p.csv line 2: invalid case id 'c 1'"),
    ],
)
def test_aasce_csv_messages(aasce, tmp_path, content, message):
    path = tmp_path / "p.csv"
    path.write_text(content)
    with pytest.raises(PredictionError) as raised:
        evaluate("aasce-cobb", predictions=path, ground_truth=aasce)
    assert str(raised.value).startswith(message)
    assert not any(str(value) in str(raised.value) for value in SECRET_ANGLES)


def case_file(root, case_id, name, content):
    folder = root / case_id
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(content)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("angles.json", "{not json", "c1/angles.json: not valid UTF-8 JSON"),
        ("angles.json", "", "c1/angles.json: the file is empty"),
        ("angles.json", '{"angles": [1, 2]}', 'c1/angles.json: expected {"angles": [pt, mt, tl]} with three numbers'),
        (
            "landmarks.json",
            '{"landmarks": [[1, 2]], "image_height": 10}',
            'c1/landmarks.json: "landmarks" must be 68 pairs',
        ),
        ("notes.txt", "hello", "c1: expected angles.json or landmarks.json in the case folder"),
    ],
)
def test_aasce_folder_messages(aasce, tmp_path, name, content, message):
    case_file(tmp_path / "pred", "c1", name, content)
    case_file(tmp_path / "pred", "c2", "angles.json", '{"angles": [1, 2, 3]}')
    with pytest.raises(PredictionError) as raised:
        evaluate("aasce-cobb", predictions=tmp_path / "pred", ground_truth=aasce)
    assert message in str(raised.value)


def test_fracture_csv_messages(make_dataset, tmp_path):
    dataset = make_dataset("fracture-ct", {"p1": {"T12": 1}})
    for content, message in (
        ("case_id,vertebra,probability\np1,T13,0.5\n", "f.csv line 2: unknown vertebra 'T13'; expected C1..C7"),
        ("case_id,vertebra,probability\np1,T12,1.5\n", "f.csv line 2: probability must lie in [0, 1], got '1.5'"),
        (
            "case_id,vertebra,probability\np1,T12,0.5\np1,T12,0.6\n",
            "f.csv line 3: duplicate vertebra T12 for case 'p1'",
        ),
        (
            "case_id,vertebra,probability\np1,T12,0.5\np1,L1,0.6\n",
            "p1: vertebra(e) L1 are not among the case's vertebrae",
        ),
    ):
        path = tmp_path / "f.csv"
        path.write_text(content)
        with pytest.raises(PredictionError) as raised:
            evaluate("fracture-ct", predictions=path, ground_truth=dataset)
        assert str(raised.value).startswith(message)


def test_labelling_folder_messages(make_dataset, tmp_path):
    dataset = make_dataset("vertebra-labelling-xr", {"x1": ({"L1": [0, 0]}, "coronal")})
    case_file(tmp_path / "pred", "x1", "centroids.json", '{"centroids": {"L1": [0, 0, 0]}}')
    with pytest.raises(PredictionError, match=r"x1/centroids.json: centroid of L1 has 3 coordinates, expected 2"):
        evaluate("vertebra-labelling-xr", predictions=tmp_path / "pred", ground_truth=dataset)


def test_segmentation_file_messages(make_dataset, tmp_path):
    reference = np.zeros((6, 6, 6), np.uint8)
    dataset = make_dataset("lumbosacral-ct", {"l1": image(reference)})
    folder = tmp_path / "pred" / "l1"
    folder.mkdir(parents=True)
    (folder / "segmentation.nii.gz").write_bytes(b"")
    with pytest.raises(PredictionError, match="l1/segmentation.nii.gz: the file is empty"):
        evaluate("lumbosacral-ct", predictions=tmp_path / "pred", ground_truth=dataset)
    (folder / "segmentation.nii.gz").write_bytes(b"definitely not an image")
    with pytest.raises(PredictionError, match=r"l1/segmentation.nii.gz: could not be read as an image"):
        evaluate("lumbosacral-ct", predictions=tmp_path / "pred", ground_truth=dataset)
    sitk.WriteImage(image(reference), str(folder / "segmentation.mha"))
    with pytest.raises(PredictionError, match="l1: several segmentation files"):
        evaluate("lumbosacral-ct", predictions=tmp_path / "pred", ground_truth=dataset)
    (folder / "segmentation.nii.gz").unlink()
    sitk.WriteImage(image(reference.astype(np.float32) + 0.5), str(folder / "segmentation.mha"))
    with pytest.raises(PredictionError, match=r"l1/segmentation.mha: label values must be integers \[0, 1, 2, 3\]"):
        evaluate("lumbosacral-ct", predictions=tmp_path / "pred", ground_truth=dataset)
    sitk.WriteImage(image(reference + 3), str(folder / "segmentation.mha"))  # float-free, all 3: valid
    result = evaluate("lumbosacral-ct", predictions=tmp_path / "pred", ground_truth=dataset)
    assert result["case"]["l1"]["dice_nerve"] == 0.0 and result["case"]["l1"]["dice_bone"] == 1.0


def test_csv_for_segmentation_task_is_refused(make_dataset, tmp_path):
    dataset = make_dataset("metastatic-body-ct", {"m1": image(np.zeros((4, 4, 4), np.uint8))})
    path = tmp_path / "p.csv"
    path.write_text("case_id\nm1\n")
    with pytest.raises(PredictionError, match="takes a folder with one segmentation per case"):
        evaluate("metastatic-body-ct", predictions=path, ground_truth=dataset)


def test_missing_ground_truth_is_a_ground_truth_error(make_dataset, tmp_path):
    dataset = make_dataset("aasce-cobb", {"c1": SECRET_ANGLES})
    (dataset / "dataset.json").write_text(json.dumps({"task": "aasce-cobb", "split": "test", "cases": ["c1", "c2"]}))
    with pytest.raises(GroundTruthError, match=r"no ground truth for case\(s\) 'c2'"):
        formats.load_ground_truth("aasce-cobb", dataset)


@pytest.mark.parametrize("suffix", ["csv", "folder"])
def test_write_then_load_round_trips(suffix, tmp_path):
    predictions = {
        "aasce-cobb": {"c1": {"angles": np.array([1.5, 2.0, 3.25])}},
        "fracture-ct": {"c1": {"vertebrae": {"T12": 0.25, "L1": 0.75}, "patient": 0.8}},
        "vertebra-labelling-xr": {"c1": {"centroids": {"L1": (1.0, 2.5), "L2": (3.0, 4.0)}}},
    }
    for task, prediction in predictions.items():
        out = tmp_path / task / ("p.csv" if suffix == "csv" else "pred")
        formats.write_predictions(task, prediction, out)
        loaded = formats.load_predictions(task, out, case_ids=["c1"])
        if task == "aasce-cobb":
            np.testing.assert_array_equal(loaded["c1"]["angles"], prediction["c1"]["angles"])
        else:
            assert loaded == prediction


def test_segmentation_write_round_trip(tmp_path):
    label_map = image(np.arange(27, dtype=np.uint8).reshape(3, 3, 3) % 4, spacing=(0.5, 0.5, 1.0))
    formats.write_predictions("lumbosacral-ct", {"c1": label_map}, tmp_path / "pred")
    path = formats.load_predictions("lumbosacral-ct", tmp_path / "pred", case_ids=["c1"])["c1"]
    array = formats.read_segmentation(path, case_id="c1", reference=label_map, allowed_labels=(0, 1, 2, 3))
    np.testing.assert_array_equal(array, sitk.GetArrayFromImage(label_map))
