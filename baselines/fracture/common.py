"""Data handling shared by the fracture-ct baselines: reading a case's inputs (CT, vertebra label map, centroids)
and the training ground truth, resampling, standardisation, the five vertebra shape groups and patient-stratified
cross-validation folds.

Every volume is reoriented to LPS on reading, so its numpy array is indexed ``[z, y, x]`` with z pointing superior
(the spine's longitudinal axis), y posterior and x left: a sagittal plane is a fixed ``x`` (the last array axis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from evaluators.layout import (
    VERTEBRA_LABELS,
    case_input_dir,
    ground_truth_dir,
    read_manifest,
)

TASK = "fracture-ct"

#: the five vertebra shape groups of Husseini et al. (Sect. 2, "VAE"); other labels join the nearest group.
GROUPS = ("T1-T5", "T6-T9", "T10-T12", "L1-L4", "L5")
_GROUP_OF_LABEL = {
    **{label: 0 for label in range(1, 13)},  # C1-C7 and T1-T5
    **{label: 1 for label in range(13, 17)},  # T6-T9
    **{label: 2 for label in range(17, 20)},  # T10-T12
    **{label: 3 for label in range(20, 24)},  # L1-L4
    **{label: 4 for label in range(24, 28)},  # L5, L6, S1, S2
}


class FractureDataError(ValueError):
    """A fracture-ct dataset folder is malformed; the message names the file, case and row."""


@dataclass
class FractureCase:
    """One patient's inputs. `image` and `vertebrae` are LPS-oriented; `centroids` maps names to LPS mm."""

    id: str
    image: sitk.Image
    vertebrae: sitk.Image
    centroids: dict[str, np.ndarray]


def vertebra_group(name: str) -> int:
    """Index into GROUPS of a vertebra name such as 'T7'."""
    if name not in VERTEBRA_LABELS:
        raise FractureDataError(f"unknown vertebra name {name!r}: expected one of {sorted(VERTEBRA_LABELS)}")
    return _GROUP_OF_LABEL[VERTEBRA_LABELS[name]]


def case_ids(data_dir: str | Path) -> list[str]:
    manifest = read_manifest(data_dir)
    if manifest.task != TASK:
        raise FractureDataError(f"{data_dir}: dataset.json has task {manifest.task!r}, expected {TASK!r}")
    return manifest.case_ids


def _read_image(path: Path, *, case_id: str) -> sitk.Image:
    if not path.is_file():
        raise FractureDataError(f"case {case_id!r}: missing input file {path}")
    image = sitk.ReadImage(str(path))
    if image.GetDimension() != 3:
        raise FractureDataError(f"case {case_id!r}: {path} must be a 3D volume, got {image.GetDimension()}D")
    return sitk.DICOMOrient(image, "LPS")


def read_case(data_dir: str | Path, case_id: str) -> FractureCase:
    """Read `inputs/<case_id>/` only (image.nii.gz, vertebrae.nii.gz, centroids.json)."""
    folder = case_input_dir(data_dir, case_id)
    image = sitk.Cast(_read_image(folder / "image.nii.gz", case_id=case_id), sitk.sitkFloat32)
    vertebrae = _read_image(folder / "vertebrae.nii.gz", case_id=case_id)
    if vertebrae.GetSize() != image.GetSize():
        raise FractureDataError(
            f"case {case_id!r}: vertebrae.nii.gz size {vertebrae.GetSize()} differs from image.nii.gz "
            f"size {image.GetSize()}"
        )
    path = folder / "centroids.json"
    if not path.is_file():
        raise FractureDataError(f"case {case_id!r}: missing input file {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise FractureDataError(f"case {case_id!r}: {path} is not valid JSON ({error})") from None
    centroids = {}
    for name, point in raw.items():
        vertebra_group(name)
        if not (isinstance(point, list) and len(point) == 3 and all(isinstance(v, (int, float)) for v in point)):
            raise FractureDataError(f"case {case_id!r}: {path}: {name} must be [x, y, z] in mm, got {point!r}")
        centroids[name] = np.asarray(point, dtype=np.float64)
    if not centroids:
        raise FractureDataError(f"case {case_id!r}: {path} lists no vertebra")
    return FractureCase(id=case_id, image=image, vertebrae=sitk.Cast(vertebrae, sitk.sitkUInt8), centroids=centroids)


def read_grades(data_dir: str | Path) -> dict[str, dict[str, int]]:
    """Training ground truth: {case_id: {vertebra: Genant grade 0-3}} from ground_truth/vertebrae.csv."""
    path = ground_truth_dir(data_dir) / "vertebrae.csv"
    if not path.is_file():
        raise FractureDataError(f"{path}: missing fracture ground truth")
    table = pd.read_csv(path, dtype={"case_id": str, "vertebra": str})
    missing = {"case_id", "vertebra", "grade"} - set(table.columns)
    if missing:
        raise FractureDataError(f"{path}: missing columns {sorted(missing)}")
    grades: dict[str, dict[str, int]] = {}
    for row_number, row in enumerate(table.itertuples(index=False), start=2):
        if row.grade not in (0, 1, 2, 3):
            raise FractureDataError(f"{path}: row {row_number}: grade must be 0-3, got {row.grade!r}")
        if row.vertebra not in VERTEBRA_LABELS:
            raise FractureDataError(f"{path}: row {row_number}: unknown vertebra {row.vertebra!r}")
        grades.setdefault(row.case_id, {})[row.vertebra] = int(row.grade)
    return grades


def patient_fractured(grades: dict[str, int]) -> bool:
    """docs/formats.md: a patient is fractured when any vertebra has grade >= 1."""
    return any(grade >= 1 for grade in grades.values())


def resample(image: sitk.Image, *, spacing: float, interpolator=sitk.sitkLinear, default: float = 0.0) -> sitk.Image:
    """Resample to isotropic `spacing` mm over the same physical extent."""
    old_spacing = np.asarray(image.GetSpacing())
    size = np.maximum(1, np.round(np.asarray(image.GetSize()) * old_spacing / spacing)).astype(int)
    return sitk.Resample(
        image, [int(s) for s in size], sitk.Transform(), interpolator, image.GetOrigin(), (spacing,) * 3,
        image.GetDirection(), default, image.GetPixelID(),
    )


def standardise(volume: np.ndarray) -> np.ndarray:
    """Zero mean and unit standard deviation over the whole volume (a constant volume maps to zeros)."""
    volume = volume.astype(np.float32)
    std = float(volume.std())
    return (volume - float(volume.mean())) / (std if std > 0 else 1.0)


def physical_to_index(image: sitk.Image, point) -> np.ndarray:
    """Continuous array index [z, y, x] of an LPS point in mm."""
    return np.asarray(image.TransformPhysicalPointToContinuousIndex([float(v) for v in point]))[::-1]


def stratified_folds(positive, *, n_folds: int, min_negatives: int, seed: int) -> list[np.ndarray]:
    """Split item indices into folds with positives and negatives spread evenly (Nicolaes et al., Sect. 4, note 2).

    When there are too few negatives for `min_negatives` per fold, the number of folds drops to
    ``negatives // min_negatives`` (at least 2); fewer than 2 * min_negatives negatives or positives is an error."""
    positive = np.asarray(positive, dtype=bool)
    negatives, positives = np.flatnonzero(~positive), np.flatnonzero(positive)
    folds = min(n_folds, len(negatives) // max(min_negatives, 1), len(positives))
    if folds < 2:
        raise FractureDataError(
            f"cross-validation needs at least {2 * max(min_negatives, 1)} negative and 2 positive patients, "
            f"got {len(negatives)} negative and {len(positives)} positive"
        )
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(negatives), rng.permutation(positives)])
    # dealing the negatives first, then the positives, round-robin keeps both classes even across folds
    return [np.sort(order[fold::folds]) for fold in range(folds)]
