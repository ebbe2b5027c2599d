"""Trivial reference predictors, one per task: what a method must beat before its row means anything.

Each learns one or two numbers from the training split (its ground truth) and predicts every test case from that
case's inputs alone, never from test labels:

- ``aasce-cobb``, training mean: every case gets the mean training PT, MT and TL angle.
- ``metastatic-body-ct``, intensity window: every voxel whose HU lies in one window [low, high] is vertebral body;
  the window (from percentiles of the training bodies' HU) is the one with the best mean training Dice.
- ``vertebra-labelling-xr``, mean position: each vertebra at its mean training position as a fraction of the image
  width and height, per view, mapped to millimetres with each test image's geometry.
- ``lumbosacral-ct``, intensity thresholds: each voxel gets the class (background, bone, disc, nerve) whose mean
  training intensity is nearest.
- ``fracture-ct``, trabecular density: a vertebra's score is minus the mean HU of its trabecular core (its label-map
  mask eroded by 3 mm: fractures and osteoporosis lower it); the score is mapped to a probability by the training
  scores' empirical distribution, so that the threshold with the best Youden's J on the training vertebrae maps to
  0.5; a patient's probability is that of their most suspicious vertebra.

``predict_reference(task, train_dir=..., test_dir=...)`` returns ``{case_id: prediction}`` in the shape
``evaluators.formats.write_predictions`` takes; ``REFERENCES[task].name`` names the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

from evaluators.layout import VERTEBRA_LABELS, case_input_dir, ground_truth_dir, read_manifest

#: Erosion of a vertebra's label-map mask that leaves its trabecular core (fracture-ct density reference).
DENSITY_EROSION_MM = 3.0


@dataclass(frozen=True)
class Reference:
    name: str
    predict: Callable[[Path, Path], dict]


def _case_ids(data_dir: Path) -> list[str]:
    return read_manifest(data_dir).case_ids


def _image(data_dir: Path, case_id: str) -> sitk.Image:
    return sitk.ReadImage(str(case_input_dir(data_dir, case_id) / "image.nii.gz"))


def _array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).astype(np.float32)


def _label_image_like(labels: np.ndarray, reference: sitk.Image) -> sitk.Image:
    out = sitk.GetImageFromArray(labels.astype(np.uint8))
    out.CopyInformation(reference)
    return out


# -------------------------------------------------------------------------------------------------- aasce-cobb
def training_mean(train_dir: Path, test_dir: Path) -> dict:
    angles = pd.read_csv(ground_truth_dir(train_dir) / "angles.csv", dtype={"case_id": str})
    mean = [float(value) for value in angles[["pt", "mt", "tl"]].mean().to_numpy()]
    return {case_id: {"angles": list(mean)} for case_id in _case_ids(test_dir)}


# ------------------------------------------------------------------------------------------ metastatic-body-ct
def intensity_window(train_dir: Path, test_dir: Path) -> dict:
    images, masks = [], []
    for case_id in _case_ids(train_dir):
        images.append(_array(_image(train_dir, case_id)))
        masks.append(_array(sitk.ReadImage(str(ground_truth_dir(train_dir) / f"{case_id}.nii.gz"))) > 0.5)
    inside = np.concatenate([image[mask] for image, mask in zip(images, masks)])
    candidates = np.percentile(inside, [0, 1, 2, 5, 10, 20, 50, 80, 90, 95, 98, 99, 100])
    best, best_dice = (candidates[0], candidates[-1]), -1.0
    for i, low in enumerate(candidates):
        for high in candidates[i + 1:]:
            dice = float(np.mean([_dice((image >= low) & (image <= high), mask) for image, mask in zip(images, masks)]))
            if dice > best_dice:
                best, best_dice = (low, high), dice
    predictions = {}
    for case_id in _case_ids(test_dir):
        reference = _image(test_dir, case_id)
        hu = _array(reference)
        predictions[case_id] = _label_image_like((hu >= best[0]) & (hu <= best[1]), reference)
    return predictions


def _dice(predicted: np.ndarray, truth: np.ndarray) -> float:
    total = predicted.sum() + truth.sum()
    return 2.0 * float((predicted & truth).sum()) / float(total) if total else 1.0


# --------------------------------------------------------------------------------------- vertebra-labelling-xr
def _view(data_dir: Path, case_id: str) -> str:
    meta = case_input_dir(data_dir, case_id) / "meta.json"
    return json.loads(meta.read_text(encoding="utf-8")).get("view", "coronal") if meta.is_file() else "coronal"


def mean_position(train_dir: Path, test_dir: Path) -> dict:
    fractions: dict[tuple[str, str], list[np.ndarray]] = {}
    for case_id in _case_ids(train_dir):
        image = _image(train_dir, case_id)
        truth = json.loads((ground_truth_dir(train_dir) / f"{case_id}.json").read_text(encoding="utf-8"))
        for name, point in truth["centroids"].items():
            index = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in point]))
            fractions.setdefault((_view(train_dir, case_id), name), []).append(index / np.array(image.GetSize(), float))
    mean = {key: np.mean(values, axis=0) for key, values in fractions.items()}
    predictions = {}
    for case_id in _case_ids(test_dir):
        image, view = _image(test_dir, case_id), _view(test_dir, case_id)
        size = np.array(image.GetSize(), dtype=float)
        predictions[case_id] = {"centroids": {
            name: list(image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in fraction * size)))
            for (for_view, name), fraction in mean.items() if for_view == view
        }}
    return predictions


# ---------------------------------------------------------------------------------------------- lumbosacral-ct
def intensity_thresholds(train_dir: Path, test_dir: Path) -> dict:
    sums, counts = np.zeros(4), np.zeros(4)
    for case_id in _case_ids(train_dir):
        image = _array(_image(train_dir, case_id))
        labels = sitk.GetArrayFromImage(sitk.ReadImage(str(ground_truth_dir(train_dir) / f"{case_id}.nii.gz")))
        for label in range(4):
            sums[label] += image[labels == label].sum()
            counts[label] += (labels == label).sum()
    means = sums / np.maximum(counts, 1)
    predictions = {}
    for case_id in _case_ids(test_dir):
        reference = _image(test_dir, case_id)
        image = _array(reference)
        predictions[case_id] = _label_image_like(np.argmin(np.abs(image[..., None] - means), axis=-1), reference)
    return predictions


# ------------------------------------------------------------------------------------------------- fracture-ct
def density_scores(data_dir: Path) -> dict[str, dict[str, float]]:
    """{case_id: {vertebra: -mean HU of its trabecular core}}; a vertebra absent from the label map gets the lowest
    score seen (least suspicious)."""
    scores: dict[str, dict[str, float]] = {}
    for case_id in _case_ids(data_dir):
        folder = case_input_dir(data_dir, case_id)
        image = sitk.DICOMOrient(sitk.ReadImage(str(folder / "image.nii.gz")), "LPS")
        labels = sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(folder / "vertebrae.nii.gz")), "LPS"))
        hu = _array(image)
        radius = np.maximum(1, np.round(DENSITY_EROSION_MM / np.asarray(image.GetSpacing()[::-1]))).astype(int)
        structure = np.ones(2 * radius + 1, bool)
        names = json.loads((folder / "centroids.json").read_text(encoding="utf-8"))
        scores[case_id] = {}
        for name in names:
            mask = labels == VERTEBRA_LABELS[name]
            core = ndimage.binary_erosion(mask, structure=structure)
            region = core if core.any() else mask
            scores[case_id][name] = -float(hu[region].mean()) if region.any() else float("nan")
    seen = [value for case in scores.values() for value in case.values() if np.isfinite(value)]
    floor = min(seen) if seen else 0.0
    return {case: {name: (value if np.isfinite(value) else floor) for name, value in per.items()}
            for case, per in scores.items()}


def _youden_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (predict positive at >= it) with the largest sensitivity + specificity - 1."""
    best, best_j = float(np.median(scores)), -np.inf
    positives, negatives = max(1, int(labels.sum())), max(1, int((~labels).sum()))
    for threshold in np.unique(scores):
        predicted = scores >= threshold
        j = (predicted & labels).sum() / positives - (predicted & ~labels).sum() / negatives
        if j > best_j:
            best, best_j = float(threshold), j
    return best


def trabecular_density(train_dir: Path, test_dir: Path) -> dict:
    train_scores = density_scores(train_dir)
    truth = pd.read_csv(ground_truth_dir(train_dir) / "vertebrae.csv", dtype={"case_id": str, "vertebra": str})
    grade = {(row.case_id, row.vertebra): int(row.grade) for row in truth.itertuples(index=False)}
    pairs = [(score, grade[(case, name)] >= 1) for case, per in train_scores.items() for name, score in per.items()
             if (case, name) in grade]
    values = np.sort(np.array([score for score, _ in pairs], dtype=float))
    labels = np.array([label for _, label in pairs], dtype=bool)
    threshold = _youden_threshold(labels, np.array([score for score, _ in pairs], dtype=float))
    at_threshold = np.searchsorted(values, threshold, side="left") / len(values)

    def probability(score: float) -> float:
        """Monotone in the score; the Youden threshold maps to 0.5."""
        below = np.searchsorted(values, score, side="right") / len(values)
        if score < threshold:
            return float(0.5 * below / max(at_threshold, 1e-9))
        return float(min(1.0, 0.5 + 0.5 * (below - at_threshold) / max(1.0 - at_threshold, 1e-9)))

    predictions = {}
    for case_id, per in density_scores(test_dir).items():
        vertebrae = {name: probability(score) for name, score in per.items()}
        predictions[case_id] = {"vertebrae": vertebrae, "patient": max(vertebrae.values()) if vertebrae else 0.0}
    return predictions


REFERENCES: dict[str, Reference] = {
    "aasce-cobb": Reference("training mean", training_mean),
    "metastatic-body-ct": Reference("intensity window", intensity_window),
    "vertebra-labelling-xr": Reference("mean position", mean_position),
    "lumbosacral-ct": Reference("intensity thresholds", intensity_thresholds),
    "fracture-ct": Reference("trabecular density", trabecular_density),
}


def predict_reference(task: str, *, train_dir: Path, test_dir: Path) -> dict:
    if task not in REFERENCES:
        raise KeyError(f"no trivial reference for task {task!r}; tasks with one: {', '.join(sorted(REFERENCES))}")
    return REFERENCES[task].predict(Path(train_dir), Path(test_dir))
