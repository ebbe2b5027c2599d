"""A small fracture-ct dataset for the fracture baseline tests (docs/formats.md layout), built in a few hundred
milliseconds: each case is a short column of box-shaped vertebrae (dense shell, softer trabecular core, a posterior
process) in soft tissue; fractured vertebrae lose height (Genant grade 1-3) in a wedge, biconcave or crush shape.
The voxel spacing is deliberately not 1 mm so that the baselines' resampling is exercised."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from evaluators.layout import VERTEBRA_LABELS, CaseEntry, Manifest, write_manifest

SPACING = (1.5, 1.5, 2.0)  # x, y, z in mm
SHAPE_ZYX = (48, 28, 24)
NAMES = ("T11", "T12", "L1", "L2", "L3")
HEIGHT_LOSS = {0: 0.0, 1: 0.22, 2: 0.33, 3: 0.5}


def _vertebra(volume, labels, *, label, z_centre, height, grade, shape, rng):
    nz, ny, nx = volume.shape
    zz, yy, xx = np.meshgrid(np.arange(nz), np.arange(ny), np.arange(nx), indexing="ij")
    y_anterior, y_posterior, x_half = 5, 17, 6
    loss = HEIGHT_LOSS[grade]
    # per AP position the body's half-height in voxels, lowered where the fracture shape removes bone
    depth = (yy - y_anterior) / (y_posterior - y_anterior)
    if shape == "wedge":
        scale = 1.0 - loss * (1.0 - depth)
    elif shape == "biconcave":
        scale = 1.0 - loss * (1.0 - np.abs(2.0 * depth - 1.0))
    else:
        scale = np.full(depth.shape, 1.0 - loss)
    half = 0.5 * height * scale
    body = (
        (yy >= y_anterior) & (yy <= y_posterior) & (np.abs(xx - nx / 2) <= x_half) & (np.abs(zz - z_centre) <= half)
    )
    process = (yy > y_posterior) & (yy <= y_posterior + 8) & (np.abs(xx - nx / 2) <= 2) & (np.abs(zz - z_centre) <= 2)
    core = body & (np.abs(zz - z_centre) <= half - 1) & (yy > y_anterior) & (yy < y_posterior)
    volume[body | process] = 700.0 + rng.normal(0, 20)
    volume[core] = 180.0 + rng.normal(0, 20)
    labels[body | process] = label


def build(out: str | Path, *, cases: int = 6, seed: int = 0, negatives: int = 2) -> Path:
    """Write `cases` cases to `out`; the first `negatives` cases have no fracture, the others one or two."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows, entries = [], []
    for index in range(cases):
        case_id = f"case_{index + 1:04d}"
        volume = rng.normal(40.0, 25.0, SHAPE_ZYX).astype(np.float32)
        volume[:, :, :2] = -1000.0
        labels = np.zeros(SHAPE_ZYX, np.uint8)
        grades = {name: 0 for name in NAMES}
        if index >= negatives:
            for name in rng.choice(NAMES, size=int(rng.integers(1, 3)), replace=False):
                grades[str(name)] = int(rng.integers(1, 4))
        geometry = sitk.Image(SHAPE_ZYX[::-1], sitk.sitkUInt8)
        geometry.SetSpacing(SPACING)
        geometry.SetOrigin((-20.0, -30.0, 100.0 + index))
        centroids = {}
        for position, name in enumerate(NAMES):
            z_centre = 5 + 9 * position
            shape = "normal" if grades[name] == 0 else str(rng.choice(["wedge", "biconcave", "crush"]))
            _vertebra(volume, labels, label=VERTEBRA_LABELS[name], z_centre=z_centre, height=7.0,
                      grade=grades[name], shape=shape, rng=rng)
            centroids[name] = list(geometry.TransformContinuousIndexToPhysicalPoint((SHAPE_ZYX[2] / 2, 11.0, z_centre)))
            rows.append({"case_id": case_id, "vertebra": name, "grade": grades[name], "shape": shape})
        image = sitk.GetImageFromArray(volume)
        image.CopyInformation(geometry)
        mask = sitk.GetImageFromArray(labels)
        mask.CopyInformation(image)
        case_dir = out / "inputs" / case_id
        case_dir.mkdir(parents=True, exist_ok=True)
        sitk.WriteImage(sitk.Cast(image, sitk.sitkInt16), str(case_dir / "image.nii.gz"))
        sitk.WriteImage(mask, str(case_dir / "vertebrae.nii.gz"))
        (case_dir / "centroids.json").write_text(json.dumps(centroids), encoding="utf-8")
        entries.append(CaseEntry(id=case_id))
    truth = out / "ground_truth"
    truth.mkdir(parents=True, exist_ok=True)
    with (truth / "vertebrae.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["case_id", "vertebra", "grade", "shape"])
        writer.writeheader()
        writer.writerows(rows)
    write_manifest(out, Manifest(task="fracture-ct", split="train", cases=tuple(entries), seed=seed))
    return out
