"""The public dataset layouts the importers read, and generators that write them (so the importers are tested on
data shaped like the real thing).

SpineWeb dataset 16 (the AASCE 2019 release, "boostnet_labeldata"):

    data/{training,test}/<name>.jpg
    labels/{training,test}/filenames.csv   one image file name per row, no header
    labels/{training,test}/landmarks.csv   136 values per row, no header: x1..x68 / image width, then y1..y68 / height
    labels/{training,test}/angles.csv      3 values per row, no header: the Cobb angles (degrees)

VerSe (2020 naming):

    rawdata/sub-<id>/sub-<id>_ct.nii.gz
    derivatives/sub-<id>/sub-<id>_seg-vert_msk.nii.gz        vertebra label map, VerSe integers
    derivatives/sub-<id>/sub-<id>_seg-subreg_ctd.json         [{"direction": ["L", "P", "S"]},
                                                               {"label": 20, "X": i, "Y": j, "Z": k}, ...]
    fracture_grades.csv                                        subject,vertebra,grade,shape (Genant; SpineBench's
                                                               table of the fracture grading distributed beside VerSe)

VerSe centroids are continuous voxel indices along the image axes named by "direction" (nibabel axis codes: the
letter each axis points towards).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image
from tqdm import tqdm

from evaluators.layout import VERTEBRA_LABELS
from phantoms.common import case_rng, write_image

SPINEWEB_SPLITS = {"train": "training", "test": "test"}
VERSE_GRADES = "fracture_grades.csv"


def axis_codes(image: sitk.Image) -> list[str]:
    """nibabel-style axis codes of a SimpleITK image: for each index axis, the patient direction it points to
    (SimpleITK's physical frame is LPS)."""
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(image.GetDimension(), image.GetDimension())
    codes = []
    for axis in range(image.GetDimension()):
        column = direction[:, axis]
        major = int(np.argmax(np.abs(column)))
        codes.append("LPS"[major] if column[major] > 0 else "RAI"[major])
    return codes


def write_spineweb16(*, out: Path, cases: int, seed: int, domain: str, small: bool, progress: bool) -> Path:
    """aasce-cobb cases in the SpineWeb dataset 16 layout (JPEG images, normalised landmarks, no headers)."""
    from evaluators.cobb import cobb_angles
    from phantoms.aasce import TASK_ID, make_case

    split = SPINEWEB_SPLITS[domain]
    data_dir, label_dir = Path(out) / "data" / split, Path(out) / "labels" / split
    data_dir.mkdir(parents=True, exist_ok=True)
    label_dir.mkdir(parents=True, exist_ok=True)
    names, landmarks, angles = [], [], []
    for index in tqdm(range(cases), desc="phantoms aasce-cobb (spineweb16)", disable=not progress):
        case = make_case(case_rng(seed, TASK_ID, index), domain=domain, small=small)
        name = f"sunhl-1th-{index + 1:04d}.jpg"
        Image.fromarray(case.image).save(data_dir / name, format="JPEG", quality=95)
        height, width = case.image.shape
        landmarks.append(np.concatenate([case.landmarks[:, 0] / width, case.landmarks[:, 1] / height]))
        angles.append(cobb_angles(case.landmarks, height))
        names.append(name)
    pd.DataFrame(names).to_csv(label_dir / "filenames.csv", header=False, index=False)
    pd.DataFrame(np.asarray(landmarks)).to_csv(label_dir / "landmarks.csv", header=False, index=False,
                                               float_format="%.8f")
    pd.DataFrame(np.asarray(angles)).to_csv(label_dir / "angles.csv", header=False, index=False, float_format="%.5f")
    return Path(out)


def write_verse(*, out: Path, cases: int, seed: int, small: bool, progress: bool) -> Path:
    """fracture-ct cases in the VerSe layout, with the fracture grades table."""
    from phantoms.fracture import TASK_ID, make_case

    rows = []
    for index in tqdm(range(cases), desc="phantoms fracture-ct (verse)", disable=not progress):
        image, labels, centroids, vertebrae = make_case(case_rng(seed, TASK_ID, index), small=small)
        subject = f"sub-verse{index + 1:03d}"
        write_image(Path(out) / "rawdata" / subject / f"{subject}_ct.nii.gz", image)
        derivatives = Path(out) / "derivatives" / subject
        write_image(derivatives / f"{subject}_seg-vert_msk.nii.gz", labels)
        entries: list[dict] = [{"direction": axis_codes(image)}]
        for name, point in centroids.items():
            index_xyz = image.TransformPhysicalPointToContinuousIndex([float(p) for p in point])
            entries.append({"label": VERTEBRA_LABELS[name], **{k: round(v, 3) for k, v in zip("XYZ", index_xyz)}})
        (derivatives / f"{subject}_seg-subreg_ctd.json").write_text(json.dumps(entries, indent=1) + "\n")
        rows.extend([subject, name, grade, shape] for name, grade, shape in vertebrae)
    pd.DataFrame(rows, columns=["subject", "vertebra", "grade", "shape"]).to_csv(Path(out) / VERSE_GRADES,
                                                                                 index=False)
    return Path(out)
