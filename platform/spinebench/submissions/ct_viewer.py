"""The CT case viewer (metastatic-body-ct, lumbosacral-ct, fracture-ct): one case's volume in three planes, with the
reference and predicted contours of the segmentation tasks in per-label colours, and for fracture-ct the vertebra
label map's outlines next to a table of each vertebra's predicted probability and true Genant grade.

Why slices drawn on the server, not a browser volume viewer (niivue and the like):
- No npm viewer to install, pin, audit and keep in step with the CSP: the page is a form and PNGs, and it reads
  without JavaScript (the slider is an ``<input type=range>`` in a GET form; ``ct_viewer.js`` only swaps the
  ``<img>`` live while the slider moves).
- No volume ever leaves the server: the browser receives one 2D picture at a time, never a NIfTI file it could keep,
  so neither the ground truth nor a test input is handed out wholesale.
- Every slice is a request that passes the same permission check as the page (`can_see_ground_truth_plots`, the
  figures' rule: organizers always, anyone else only on phases whose labels are public), so a link copied out of an
  organizer's page gives a participant nothing on a hidden phase.
- Nothing of a hidden phase is ever written to disk: its volumes are read from the dataset and the stored
  predictions on each request. Where the labels are public, the volumes are kept once as memory-mapped .npy files
  (`load_volumes`), so a slider step reads one slice, not three compressed volumes. Slice pictures themselves are
  never stored: one is a resize of a 2D array.

Orientation: arrays are SimpleITK's (z, y, x); axial slices show rows y and columns x, coronal and sagittal ones
put the last z row on top (superior up for the usual increasing-z-is-superior volumes). Each picture is resized to
the slice's physical aspect ratio, its longest side `DISPLAY_PIXELS`. The views enforce permissions; this module
only reads and draws.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from .case_predictions import case_prediction
from .models import Submission
from .plots import _digest

SEGMENTATION_TASKS = ("metastatic-body-ct", "lumbosacral-ct")
CT_TASKS = (*SEGMENTATION_TASKS, "fracture-ct")
PLANES = ("axial", "coronal", "sagittal")
#: CT windows as (level, width) in HU.
WINDOWS = {"bone": (400.0, 1800.0), "soft-tissue": (40.0, 400.0)}
DEFAULT_WINDOW = "bone"
#: Longest side of a slice picture in pixels.
DISPLAY_PIXELS = 384
#: Okabe-Ito colours (distinguishable with the common colour-vision deficiencies); the legend's swatch classes
#: `sb-swatch-<n>` in viewers.css use the same order.
PALETTE = ((230, 159, 0), (86, 180, 233), (0, 158, 115), (240, 228, 66), (0, 114, 178), (213, 94, 0), (204, 121, 167))
#: Part of the volume cache folder's name: a change of what is stored gets a new folder, never a stale one.
VOLUME_CACHE = "npy-1"
LABEL_NAMES = {"metastatic-body-ct": {1: "vertebral body"}, "lumbosacral-ct": {1: "bone", 2: "disc", 3: "nerve"}}


class SliceRequestError(ValueError):
    """A slice request names an unknown plane or window, or an index outside the volume (the views answer 400)."""


def viewer_available(submission: Submission) -> bool:
    """A CT viewer exists for this submission's cases (whoever looks; permission is the views' business)."""
    evaluation = getattr(submission, "evaluation", None)
    return (
        submission.phase.task in CT_TASKS
        and bool(submission.predictions_file)
        and evaluation is not None
        and bool(evaluation.case_metrics)
    )


def swatch(label: int) -> int:
    """Palette index of a label (also the legend's CSS class number)."""
    return (int(label) - 1) % len(PALETTE)


@dataclass(frozen=True)
class Volumes:
    image: np.ndarray  # (z, y, x) HU
    spacing: tuple[float, float, float]  # x, y, z in mm
    truth: np.ndarray | None  # reference label map (segmentation tasks)
    predicted: np.ndarray | None  # predicted label map (segmentation tasks)
    outlines: np.ndarray | None  # vertebra label map (fracture-ct input)

    def count(self, plane: str) -> int:
        """Number of slices along `plane`."""
        return self.image.shape[PLANES.index(plane)]


@dataclass(frozen=True)
class CaseView:
    case_id: str
    counts: dict[str, int]  # plane -> number of slices
    centre: dict[str, int]  # plane -> default slice index
    legend: list[tuple[int, str]]  # swatch, label name (segmentation tasks)
    vertebrae: list[tuple[int, str, float | None, int | None]]  # swatch, name, predicted probability, true grade
    patient_probability: float | None


def _array(path) -> tuple[np.ndarray, tuple[float, float, float]]:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image), _spacing(image.GetSpacing())


def _spacing(values) -> tuple[float, float, float]:
    x, y, z = (float(value) for value in values)
    return x, y, z


def _check_case(submission: Submission, case_id: str) -> None:
    if case_id not in submission.evaluation.case_metrics:
        raise KeyError(case_id)


def _read_case(submission: Submission, case_id: str) -> dict:
    """The dataset's arrays of the case: image, spacing, and the reference (segmentation) or the vertebra label map
    (fracture-ct)."""
    from evaluators.formats import load_ground_truth
    from evaluators.layout import case_input_dir

    root = submission.phase.dataset.root
    image, spacing = _array(case_input_dir(root, case_id) / "image.nii.gz")
    arrays = {"image": image, "spacing": np.asarray(spacing)}
    if submission.phase.task == "fracture-ct":
        arrays["outlines"] = _array(case_input_dir(root, case_id) / "vertebrae.nii.gz")[0]
    else:
        arrays["truth"] = _array(load_ground_truth(submission.phase.task, root)[case_id])[0]
    return arrays


def _read_prediction(submission: Submission, case_id: str) -> dict:
    return {"predicted": case_prediction(submission, case_id, lambda path: _array(path)[0])}


def _volumes(arrays: dict) -> Volumes:
    return Volumes(
        image=arrays["image"],
        spacing=_spacing(arrays["spacing"]),
        truth=arrays.get("truth"),
        predicted=arrays.get("predicted"),
        outlines=arrays.get("outlines"),
    )


def read_volumes(submission: Submission, case_id: str) -> Volumes:
    """The case's image and label maps, read from the dataset and the stored predictions."""
    arrays = _read_case(submission, case_id)
    if submission.phase.task in SEGMENTATION_TASKS:
        arrays.update(_read_prediction(submission, case_id))
    return _volumes(arrays)


def case_cache_dir(submission: Submission, case_id: str) -> Path:
    """The dataset's arrays of a case, shared by every submission scored on that dataset."""
    dataset = submission.phase.dataset
    digest = _digest(VOLUME_CACHE, dataset.path, case_id)
    return Path(settings.SPINEBENCH_CACHE_DIR) / "volumes" / f"dataset-{dataset.pk}" / f"ct-{case_id}-{digest}"


def prediction_cache_dir(submission: Submission, case_id: str) -> Path:
    digest = _digest(VOLUME_CACHE, submission.predictions_file.name, submission.phase.dataset_id, case_id)
    return Path(settings.SPINEBENCH_CACHE_DIR) / "volumes" / f"submission-{submission.pk}" / f"ct-{case_id}-{digest}"


def _compact(array: np.ndarray) -> np.ndarray:
    """Label maps with labels 0-255 stored as uint8 (a quarter or an eighth of int32/int64)."""
    if array.dtype.kind in "iu" and array.size and array.min() >= 0 and array.max() < 256:
        return array.astype(np.uint8)
    return array


def _memory_mapped(folder: Path, read) -> dict:
    """{name: read-only memory-mapped array} of the arrays `read()` returns, written to `folder` once (to a temporary
    folder renamed into place, so a concurrent request never reads half of it)."""
    if not (folder / "complete").is_file():
        arrays = read()
        folder.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".writing-"))
        try:
            for name, array in arrays.items():
                np.save(temporary / f"{name}.npy", array if name in ("image", "spacing") else _compact(array))
            (temporary / "complete").write_text("", encoding="utf-8")
            os.replace(temporary, folder)
        except OSError:
            if not (folder / "complete").is_file():  # else a concurrent request wrote it first: as good
                raise
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
    return {path.stem: np.load(path, mmap_mode="r") for path in folder.glob("*.npy")}


def load_volumes(submission: Submission, case_id: str, *, cache: bool) -> Volumes:
    """The case's volumes. KeyError when the case is not one the submission was scored on.

    `cache` (only where the phase's labels are public): the arrays are kept once as .npy files and memory-mapped
    (the dataset's per case, the prediction per submission and case), so a slice request reads one slice instead of
    decompressing three volumes; otherwise (hidden phases) they are read from the sources on every request and
    nothing is written."""
    _check_case(submission, case_id)
    if not cache:
        return read_volumes(submission, case_id)
    arrays = _memory_mapped(case_cache_dir(submission, case_id), lambda: _read_case(submission, case_id))
    if submission.phase.task in SEGMENTATION_TASKS:
        arrays.update(
            _memory_mapped(prediction_cache_dir(submission, case_id), lambda: _read_prediction(submission, case_id))
        )
    return _volumes(arrays)


def _centre(mask: np.ndarray | None, shape) -> dict[str, int]:
    """Per plane, the slice through the foreground's centre of mass (the middle slice when there is none)."""
    if mask is not None and np.any(mask > 0):
        point = np.argwhere(mask > 0).mean(axis=0)
        return {plane: round(point[k]) for k, plane in enumerate(PLANES)}
    return {plane: shape[k] // 2 for k, plane in enumerate(PLANES)}


def case_view(submission: Submission, volumes: Volumes, case_id: str) -> CaseView:
    """What the page shows beside the slices."""
    task = submission.phase.task
    counts = {plane: volumes.count(plane) for plane in PLANES}
    if task != "fracture-ct":
        maps = [volume for volume in (volumes.truth, volumes.predicted) if volume is not None]
        present = sorted(set().union(*(np.unique(volume).tolist() for volume in maps)) - {0})
        label_names = LABEL_NAMES[task]
        legend = [(swatch(label), label_names.get(int(label), f"label {int(label)}")) for label in present]
        return CaseView(case_id, counts, _centre(volumes.truth, volumes.image.shape), legend, [], None)
    from evaluators.formats import load_ground_truth
    from evaluators.layout import VERTEBRA_LABELS

    grades = load_ground_truth(task, submission.phase.dataset.root)[case_id]["vertebrae"]
    prediction = case_prediction(submission, case_id, lambda value: value)
    probabilities = prediction["vertebrae"]
    vertebrae = sorted(set(grades) | set(probabilities), key=lambda name: VERTEBRA_LABELS.get(name, 0))
    rows = [(swatch(VERTEBRA_LABELS[name]), name, probabilities.get(name), grades.get(name)) for name in vertebrae]
    return CaseView(
        case_id, counts, _centre(volumes.outlines, volumes.image.shape), [], rows, prediction.get("patient")
    )


def _plane(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    if plane == "axial":
        return volume[index]
    if plane == "coronal":
        return volume[::-1, index, :]
    return volume[::-1, :, index]


def display_size(shape, spacing, plane: str) -> tuple[int, int]:
    """(width, height) in pixels of a `plane` slice of a (z, y, x) volume with (x, y, z) spacing: the slice's
    physical aspect ratio, its longest side DISPLAY_PIXELS."""
    z, y, x = (shape[k] * spacing[2 - k] for k in range(3))
    width, height = {"axial": (x, y), "coronal": (x, z), "sagittal": (y, z)}[plane]
    scale = DISPLAY_PIXELS / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def check_request(volumes: Volumes, plane: str, index, window: str) -> int:
    """The slice index as an int, or SliceRequestError naming what is wrong."""
    if plane not in PLANES:
        raise SliceRequestError(f"unknown plane {plane!r}; expected one of {', '.join(PLANES)}")
    if window not in WINDOWS:
        raise SliceRequestError(f"unknown window {window!r}; expected one of {', '.join(WINDOWS)}")
    try:
        number = int(str(index))
    except ValueError:
        raise SliceRequestError(f"slice index must be a whole number, got {str(index)[:20]!r}") from None
    count = volumes.count(plane)
    if not 0 <= number < count:
        raise SliceRequestError(f"{plane} slice {number} is out of range: this case has slices 0 to {count - 1}")
    return number


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Pixels of `mask` within two pixels of its edge (4-neighbourhood erosion, twice)."""
    inner = mask.copy()
    for _ in range(2):
        padded = np.pad(inner, 1)
        inner = inner & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~inner


def _resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(labels.astype(np.int32), mode="I").resize(size, Image.Resampling.NEAREST))


def render_slice(submission: Submission, volumes: Volumes, plane: str, index: int, window: str) -> bytes:
    """The PNG of one checked slice: the CT in `window`; reference contours solid and predicted ones dashed in the
    label's colour (segmentation tasks), or each vertebra's outline and name (fracture-ct)."""
    from PIL import Image, ImageDraw

    from evaluators.layout import VERTEBRA_NAMES

    size = display_size(volumes.image.shape, volumes.spacing, plane)
    level, width = WINDOWS[window]
    grey = np.clip((_plane(volumes.image, plane, index).astype(np.float64) - (level - width / 2)) / width, 0, 1)
    picture = Image.fromarray((grey * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR).convert("RGB")
    pixels = np.array(picture)
    rows, columns = np.indices(pixels.shape[:2])
    dashes = ((rows // 4 + columns // 4) % 2) == 0
    names = []
    layers = (
        [(volumes.outlines, None)]
        if volumes.outlines is not None
        else [(volumes.truth, None), (volumes.predicted, dashes)]
    )
    for volume, pattern in layers:
        if volume is None:
            continue
        labels = _resize_labels(_plane(volume, plane, index), size)
        for label in np.unique(labels):
            if label == 0:
                continue
            edge = _boundary(labels == label)
            pixels[edge if pattern is None else edge & pattern] = PALETTE[swatch(label)]
            if volumes.outlines is not None:
                where = np.argwhere(labels == label).mean(axis=0)
                names.append((VERTEBRA_NAMES.get(int(label), str(label)), (float(where[1]), float(where[0]))))
    picture = Image.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    for name, (x, y) in names:
        draw.text((x, y), name, fill=(255, 255, 255), anchor="mm", stroke_width=2, stroke_fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
