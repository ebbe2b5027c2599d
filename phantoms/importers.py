"""Importers: public dataset layouts (see `phantoms.layouts`) and plain image files into a SpineBench dataset folder.

    import_dataset("spineweb16", "boostnet_labeldata", "data/aasce-train", task="aasce-cobb", split="train")

Layouts:
- `spineweb16` (task aasce-cobb): images + filenames.csv, landmarks.csv (68 x then 68 y, normalised), angles.csv
  (optional; without it the angles are computed from the landmarks with the official algorithm).
- `verse` (task fracture-ct): CT, vertebra mask and centroid JSON per subject, grades from fracture_grades.csv.
- `dicom-series`: every DICOM series under a folder becomes a case (SimpleITK's series reader).
- `image`: one file, or every file of a folder: .nii.gz, .nii, .mha, .nrrd, .png, .jpg, .dcm.
The last two import inputs only (no ground truth: images to run algorithms on) for the image-input tasks. GDCM
presents MONOCHROME1 radiographs inverted (bone bright), as the tasks expect.

All or nothing: the dataset is assembled in a temporary folder beside `dst` and renamed into place at the end, so a
refused import leaves nothing behind. Every refusal is an `ImportDatasetError` naming the file and the problem.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from PIL import Image, UnidentifiedImageError

from evaluators.layout import (
    SPLITS,
    VERTEBRA_NAMES,
    CaseEntry,
    Manifest,
    case_input_dir,
    ground_truth_dir,
    write_manifest,
)
from phantoms.common import write_image, write_json, write_png
from phantoms.layouts import SPINEWEB_SPLITS, VERSE_GRADES, axis_codes

IMAGE_SUFFIXES = (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".png", ".jpg", ".jpeg", ".dcm")
IMAGE_TASKS = {"aasce-cobb": 2, "vertebra-labelling-xr": 2, "metastatic-body-ct": 3, "lumbosacral-ct": 3}
GEOMETRY_TOLERANCE = 1e-3


class ImportDatasetError(ValueError):
    """An import was refused; the message names the file and the problem, and nothing was written."""


def safe_case_id(name: str, taken: set[str]) -> str:
    """A valid, unique case id from a file or series name."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip("_.-")[:120] or "case"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}_{n}", n + 1
    taken.add(candidate)
    return candidate


def _read_image(path: Path) -> sitk.Image:
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else "unknown error"
        raise ImportDatasetError(f"{path}: image unreadable ({first})") from None


def _read_headerless_csv(path: Path, *, columns: int) -> np.ndarray:
    if not path.is_file():
        raise ImportDatasetError(f"{path}: missing label file")
    try:
        frame = pd.read_csv(path, header=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ImportDatasetError(f"{path}: not a readable CSV ({error})") from None
    if frame.shape[1] != columns:
        raise ImportDatasetError(f"{path}: expected {columns} columns per row, got {frame.shape[1]}")
    values = frame.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = bad[0]
        raise ImportDatasetError(f"{path}: row {row + 1}, column {column + 1}: not a finite number "
                                 f"({frame.iat[row, column]!r})")
    return np.asarray(values, dtype=np.float64)


def _first_existing(candidates: list[Path], what: str, src: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ImportDatasetError(f"{src}: no {what} folder (looked for {', '.join(str(c) for c in candidates)})")


def _import_spineweb16(src: Path, work: Path, *, task: str, split: str) -> list[CaseEntry]:
    from evaluators.cobb import cobb_angles

    _require_task(task, ("aasce-cobb",), "spineweb16")
    sub = SPINEWEB_SPLITS[split]
    labels = next((d for d in (src / "labels" / sub, src / "labels", src) if (d / "filenames.csv").is_file()), None)
    if labels is None:
        raise ImportDatasetError(f"{src}: missing label file filenames.csv (looked in labels/{sub}, labels, .)")
    data = _first_existing([src / "data" / sub, src / "data", src], "image", src)
    names_frame = pd.read_csv(labels / "filenames.csv", header=None, dtype=str)
    if names_frame.shape[1] != 1:
        raise ImportDatasetError(f"{labels / 'filenames.csv'}: expected 1 column per row, got {names_frame.shape[1]}")
    names = names_frame[0].str.strip().tolist()
    landmarks = _read_headerless_csv(labels / "landmarks.csv", columns=136)
    angles_path = labels / "angles.csv"
    angles = _read_headerless_csv(angles_path, columns=3) if angles_path.is_file() else None
    for path, table in ((labels / "landmarks.csv", landmarks), (angles_path, angles)):
        if table is not None and len(table) != len(names):
            raise ImportDatasetError(f"{path}: {len(table)} rows but filenames.csv lists {len(names)} images")
    taken: set[str] = set()
    entries, landmark_rows, angle_rows = [], [], []
    for row, name in enumerate(names):
        path = data / name
        if not path.is_file():
            raise ImportDatasetError(f"{path}: image listed in filenames.csv row {row + 1} does not exist")
        try:
            with Image.open(path) as opened:
                pixels = np.asarray(opened.convert("L"))
        except (UnidentifiedImageError, OSError) as error:
            raise ImportDatasetError(f"{path}: image unreadable ({error})") from None
        height, width = pixels.shape
        points = np.stack([landmarks[row, :68] * width, landmarks[row, 68:] * height], axis=1)
        cid = safe_case_id(Path(name).stem, taken)
        write_png(case_input_dir(work, cid) / "image.png", pixels)
        case_angles = angles[row] if angles is not None else cobb_angles(points, height)
        landmark_rows.append([cid, height, width, *np.round(points[:, 0], 3), *np.round(points[:, 1], 3)])
        angle_rows.append([cid, *np.round(case_angles, 4)])
        entries.append(CaseEntry(id=cid))
    gt = ground_truth_dir(work)
    gt.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(angle_rows, columns=["case_id", "pt", "mt", "tl"]).to_csv(gt / "angles.csv", index=False)
    columns = [f"x{i}" for i in range(1, 69)] + [f"y{i}" for i in range(1, 69)]
    pd.DataFrame(landmark_rows, columns=["case_id", "image_height", "image_width", *columns]).to_csv(
        gt / "landmarks.csv", index=False)
    return entries


def _same_geometry(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize()
            and np.allclose(a.GetSpacing(), b.GetSpacing(), atol=GEOMETRY_TOLERANCE)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=GEOMETRY_TOLERANCE)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=GEOMETRY_TOLERANCE))


def verse_centroids_mm(path: Path, image: sitk.Image) -> dict[str, list[float]]:
    """Read a VerSe centroid JSON (voxel indices along the axes named by its "direction") into mm per name."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportDatasetError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(entries, list) or not entries or "direction" not in entries[0]:
        raise ImportDatasetError(f"{path}: expected a list starting with {{\"direction\": [...]}}")
    codes, image_codes = [str(c).upper() for c in entries[0]["direction"]], axis_codes(image)
    opposite = dict(zip("LPSRAI", "RAILPS"))
    mapping = []  # for each centroid axis: (image axis, flipped)
    for code in codes:
        if code in image_codes:
            mapping.append((image_codes.index(code), False))
        elif opposite.get(code) in image_codes:
            mapping.append((image_codes.index(opposite[code]), True))
        else:
            raise ImportDatasetError(f"{path}: direction {codes} does not match the image axes {image_codes}")
    size = image.GetSize()
    centroids = {}
    for number, entry in enumerate(entries[1:], start=2):
        label = entry.get("label")
        if label not in VERTEBRA_NAMES or not all(k in entry for k in "XYZ"):
            raise ImportDatasetError(f"{path}: entry {number}: expected a VerSe label 1-27 and X, Y, Z, got {entry}")
        index = [0.0, 0.0, 0.0]
        for value, (axis, flipped) in zip((entry["X"], entry["Y"], entry["Z"]), mapping):
            index[axis] = size[axis] - 1 - float(value) if flipped else float(value)
        point = image.TransformContinuousIndexToPhysicalPoint(index)
        centroids[VERTEBRA_NAMES[label]] = [round(float(p), 2) for p in point]
    return centroids


def _import_verse(src: Path, work: Path, *, task: str, split: str) -> list[CaseEntry]:
    _require_task(task, ("fracture-ct",), "verse")
    grades_path = src / VERSE_GRADES
    if not grades_path.is_file():
        raise ImportDatasetError(f"{grades_path}: missing label file (fracture-ct needs a grade per vertebra)")
    grades = pd.read_csv(grades_path, dtype={"subject": str, "vertebra": str})
    missing = {"subject", "vertebra", "grade", "shape"} - set(grades.columns)
    if missing:
        raise ImportDatasetError(f"{grades_path}: missing columns {sorted(missing)}")
    scans = sorted((src / "rawdata").glob("sub-*/*_ct.nii.gz")) if (src / "rawdata").is_dir() else []
    if not scans:
        raise ImportDatasetError(f"{src / 'rawdata'}: no sub-*/*_ct.nii.gz scans")
    taken: set[str] = set()
    entries, rows = [], []
    for scan in scans:
        subject = scan.parent.name
        stem = scan.name[: -len("_ct.nii.gz")]
        derivatives = src / "derivatives" / subject
        mask_path = derivatives / f"{stem}_seg-vert_msk.nii.gz"
        ctd_path = next(
            iter(sorted(derivatives.glob(f"{stem}*_ctd.json"))), derivatives / f"{stem}_seg-subreg_ctd.json"
        )
        for path in (mask_path, ctd_path):
            if not path.is_file():
                raise ImportDatasetError(f"{path}: missing label file for {scan.name}")
        image, mask = _read_image(scan), _read_image(mask_path)
        if not _same_geometry(image, mask):
            raise ImportDatasetError(f"{mask_path}: geometry mismatch with {scan.name} (size {mask.GetSize()} vs "
                                     f"{image.GetSize()}, spacing {mask.GetSpacing()} vs {image.GetSpacing()})")
        centroids = verse_centroids_mm(ctd_path, image)
        subject_grades = grades[grades["subject"] == subject].set_index("vertebra")
        cid = safe_case_id(subject, taken)
        for name in centroids:
            if name not in subject_grades.index:
                raise ImportDatasetError(f"{grades_path}: no grade for {subject} {name}")
            grade, shape = subject_grades.loc[name, ["grade", "shape"]]
            if int(grade) not in (0, 1, 2, 3):
                raise ImportDatasetError(f"{grades_path}: {subject} {name}: grade must be 0-3, got {grade!r}")
            rows.append([cid, name, int(grade), str(shape)])
        inputs = case_input_dir(work, cid)
        write_image(inputs / "image.nii.gz", sitk.Cast(image, sitk.sitkInt16))
        write_image(inputs / "vertebrae.nii.gz", sitk.Cast(mask, sitk.sitkUInt8))
        write_json(inputs / "centroids.json", centroids)
        entries.append(CaseEntry(id=cid))
    gt = ground_truth_dir(work)
    gt.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["case_id", "vertebra", "grade", "shape"]).to_csv(gt / "vertebrae.csv", index=False)
    return entries


def _require_task(task: str, allowed: tuple[str, ...], layout: str) -> None:
    if task not in allowed:
        raise ImportDatasetError(f"layout {layout!r} holds data for {', '.join(allowed)}, not {task!r}")


def _write_image_input(image: sitk.Image, inputs: Path, *, task: str, source: str, view: str) -> None:
    """Write one image as the task's input, checking its dimension."""
    if image.GetDimension() == 3 and image.GetSize()[2] == 1 and IMAGE_TASKS[task] == 2:
        image = image[:, :, 0]  # a single-frame DICOM or a 2D NIfTI stored as a one-slice volume
    if image.GetNumberOfComponentsPerPixel() > 1:
        image = sitk.VectorIndexSelectionCast(image, 0) if task != "aasce-cobb" else image
    single_slice = image.GetDimension() == 3 and image.GetSize()[2] == 1
    if image.GetDimension() != IMAGE_TASKS[task] or single_slice:
        raise ImportDatasetError(f"{source}: {task} needs a {IMAGE_TASKS[task]}D image, got "
                                 f"{'a single slice' if single_slice else f'{image.GetDimension()}D'} of size "
                                 f"{image.GetSize()}")
    if task == "aasce-cobb":
        array = sitk.GetArrayFromImage(image).astype(np.float64)
        if array.ndim == 3:  # RGB(A) -> luminance
            array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
        low, high = float(array.min()), float(array.max())
        scaled = np.zeros_like(array) if high <= low else (array - low) / (high - low) * 255.0
        write_png(inputs / "image.png", np.round(scaled).astype(np.uint8))
        return
    write_image(inputs / "image.nii.gz", image)
    if task == "vertebra-labelling-xr":
        write_json(inputs / "meta.json", {"view": view})


def _dicom_view(path: Path) -> str:
    """'sagittal' for a lateral DICOM radiograph (ViewPosition LAT/LL/RL), else 'coronal'."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
        position = reader.GetMetaData("0018|5101").strip().upper() if reader.HasMetaDataKey("0018|5101") else ""
    except RuntimeError:
        return "coronal"
    return "sagittal" if position in ("LAT", "LL", "RL", "LATERAL") else "coronal"


def _import_images(src: Path, work: Path, *, task: str, split: str) -> list[CaseEntry]:
    if task not in IMAGE_TASKS:
        raise ImportDatasetError(f"layout 'image' imports inputs of {sorted(IMAGE_TASKS)}, not {task!r} "
                                 "(fracture-ct inputs need a vertebra label map and centroids: use the verse layout)")
    files = [src] if src.is_file() else sorted(p for p in src.iterdir() if p.name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ImportDatasetError(f"{src}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    taken: set[str] = set()
    entries = []
    for path in files:
        if not path.name.lower().endswith(IMAGE_SUFFIXES):
            raise ImportDatasetError(f"{path}: unsupported file type (expected one of {', '.join(IMAGE_SUFFIXES)})")
        stem = path.name[: -len(".nii.gz")] if path.name.lower().endswith(".nii.gz") else path.stem
        cid = safe_case_id(stem, taken)
        view = _dicom_view(path) if path.suffix.lower() == ".dcm" else "coronal"
        _write_image_input(_read_image(path), case_input_dir(work, cid), task=task, source=str(path), view=view)
        entries.append(CaseEntry(id=cid))
    return entries


def _import_dicom_series(src: Path, work: Path, *, task: str, split: str) -> list[CaseEntry]:
    if task not in IMAGE_TASKS:
        raise ImportDatasetError(f"layout 'dicom-series' imports inputs of {sorted(IMAGE_TASKS)}, not {task!r}")
    if not src.is_dir():
        raise ImportDatasetError(f"{src}: not a folder of DICOM files")
    folders = sorted({p.parent for p in src.rglob("*") if p.is_file()} | {src})
    taken: set[str] = set()
    entries: list[CaseEntry] = []
    for folder in folders:
        for series in sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder)) or ():
            names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), series)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(names)
            try:
                image = reader.Execute()
            except RuntimeError as error:
                raise ImportDatasetError(f"{folder}: DICOM series {series} unreadable "
                                         f"({str(error).strip().splitlines()[0]})") from None
            label = folder.relative_to(src).as_posix().replace("/", "_") if folder != src else "series"
            cid = safe_case_id(f"{label}_{len(entries) + 1}", taken)
            _write_image_input(image, case_input_dir(work, cid), task=task, source=f"{folder} series {series}",
                               view=_dicom_view(Path(names[0])))
            entries.append(CaseEntry(id=cid))
    if not entries:
        raise ImportDatasetError(f"{src}: no DICOM series found")
    return entries


IMPORTERS = {
    "spineweb16": _import_spineweb16,
    "verse": _import_verse,
    "dicom-series": _import_dicom_series,
    "image": _import_images,
}


def import_dataset(layout: str, src: str | Path, dst: str | Path, *, task: str, split: str) -> Manifest:
    """Import `src` in `layout` into the SpineBench dataset folder `dst` (which must not exist or be empty) and
    return its manifest. Refusals raise ImportDatasetError and leave `dst` untouched."""
    if layout not in IMPORTERS:
        raise ImportDatasetError(f"unknown layout {layout!r}; expected one of {sorted(IMPORTERS)}")
    if split not in SPLITS:
        raise ImportDatasetError(f"split must be one of {SPLITS}, got {split!r}")
    src, dst = Path(src), Path(dst)
    if not src.exists():
        raise ImportDatasetError(f"{src}: does not exist")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise ImportDatasetError(f"{dst}: already exists and is not empty")
    dst.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dst.name}.importing-", dir=dst.parent))
    try:
        entries = IMPORTERS[layout](src, work, task=task, split=split)
        ground_truth_dir(work).mkdir(exist_ok=True)
        manifest = Manifest(task=task, split=split, domain=split, source="imported", seed=None,
                            cases=tuple(entries))
        write_manifest(work, manifest)
        if dst.exists():
            dst.rmdir()
        work.rename(dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return manifest

