"""`lumbosacral-ct`: thin-slice CT of L1-S2 at 0.5 x 0.5 x 1 mm (x, y, z) with the label map bone = 1, disc = 2,
nerve = 3 (the roots L1-S1 leaving the foramina, with their fat sleeves).

The test split has two groups like the paper's evaluation: `in-domain` (the training scanner) and `cross-dataset`
(another scanner and population: a softer reconstruction kernel, more noise, a HU calibration offset, different body
size and bone density). Labels are computed on the same grid as the image, so they stay exact in both groups.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import gaussian_filter

from phantoms import ct
from phantoms.common import GeneratedCase, Job, case_id, case_rng, run_cases, volume_image, write_image
from phantoms.montage import to_uint8

TASK_ID = "lumbosacral-ct"
GROUPS = ("in-domain", "cross-dataset")
LEVELS = ["L1", "L2", "L3", "L4", "L5", "S1", "S2"]
ROOT_RADIUS = {"L1": 2.2, "L2": 2.4, "L3": 2.6, "L4": 2.9, "L5": 3.2, "S1": 3.0}


@dataclass(frozen=True)
class Scanner:
    """Acquisition: in-plane field of view (mm), noise SD (HU), reconstruction blur (in 0.5 mm units), HU offset."""

    fov: tuple[float, float]
    noise: tuple[float, float]
    blur: tuple[float, float]
    offset: tuple[float, float]
    size: tuple[float, float]  # population body size factor
    osteoporosis: tuple[float, float]


SCANNERS = {
    "in-domain": Scanner(fov=(120, 140), noise=(12, 22), blur=(0.0, 0.0), offset=(0, 0), size=(0.92, 1.08),
                         osteoporosis=(0.0, 0.4)),
    "cross-dataset": Scanner(fov=(120, 140), noise=(25, 45), blur=(0.7, 1.2), offset=(15, 40), size=(0.85, 1.0),
                             osteoporosis=(0.2, 0.7)),
}
SPACING = (0.5, 0.5, 1.0)
SMALL_SPACING = (2.0, 2.0, 4.0)


def make_case(rng: np.random.Generator, *, group: str, small: bool) -> tuple[sitk.Image, sitk.Image]:
    scanner = SCANNERS[group]
    params = ct.sample_params(rng, osteoporosis=float(rng.uniform(*scanner.osteoporosis)))
    params = ct.SpineParams(size=float(rng.uniform(*scanner.size)), kyphosis=params.kyphosis,
                            scoliosis=params.scoliosis, trabecular_hu=params.trabecular_hu, cortex=params.cortex)
    spine = ct.build_spine(rng, ["T12", *LEVELS], params=params, anchor=np.zeros(3), anchor_level="L3")
    spacing = SMALL_SPACING if small else SPACING
    top = spine[1].centre[2] + spine[1].half_height + 4.0  # from just above L1 ...
    bottom = spine[-1].centre[2] - spine[-1].half_height - 6.0  # ... to below S2
    fov = rng.uniform(*scanner.fov)
    centre_xy = np.array([spine[3].centre[0], spine[3].centre[1] + 15.0]) + rng.normal(0, 4, 2)
    nxy = int(round(fov / spacing[0]))
    nz = int(np.ceil((top - bottom) / spacing[2])) + 1
    origin = (centre_xy[0] - fov / 2, centre_xy[1] - fov / 2, bottom)
    grid = ct.Grid(shape=(nz, nxy, nxy), spacing=spacing, origin=origin)
    background = ct.body_background(grid, rng, spine_centre=spine[3].centre, thorax_z=None)
    layers = ct.render(grid, spine, rng, background=background, nerves=ROOT_RADIUS)
    hu = layers.hu
    blur = rng.uniform(*scanner.blur)
    if blur > 0:
        hu = gaussian_filter(hu, [blur * SPACING[0] / s for s in spacing[::-1]])  # blur mm / voxel size
    hu = ct.add_noise(hu + rng.uniform(*scanner.offset), rng, rng.uniform(*scanner.noise))
    labels = np.where(layers.vertebra > 0, ct.PART_BONE, 0).astype(np.uint8)
    labels[layers.part == ct.PART_DISC] = ct.PART_DISC
    labels[layers.part == ct.PART_NERVE] = ct.PART_NERVE
    image = volume_image(ct.to_hu16(hu), spacing_xyz=spacing, origin_xyz=origin)
    label = volume_image(labels, spacing_xyz=spacing, origin_xyz=origin, dtype=np.uint8)
    return image, label


def preview(image: sitk.Image, labels: sitk.Image) -> np.ndarray:
    """Mid-sagittal slice beside the coronal slice holding the most nerve voxels, superior up."""
    array, label_array = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(labels)
    row = int(np.argmax((label_array == ct.PART_NERVE).sum(axis=(0, 2))))
    sagittal = array[::-1, :, array.shape[2] // 2]
    coronal = array[::-1, row, :]
    stretch = max(1, int(round(image.GetSpacing()[2] / image.GetSpacing()[0])))  # square pixels on screen
    both = np.repeat(np.concatenate([sagittal, coronal], axis=1), stretch, axis=0)
    return to_uint8(both, low=-250.0, high=1000.0)


def generate(*, out: Path, cases: int, seed: int, domain: str, layout: str, small: bool, progress: bool,
             workers: int = 1) -> Path:
    def job(index: int) -> Job:
        cid = case_id(index)
        group = GROUPS[index % 2] if domain == "test" else None

        def write(input_dir: Path, gt_dir: Path) -> GeneratedCase:
            image, label = make_case(case_rng(seed, TASK_ID, index), group=group or "in-domain", small=small)
            write_image(input_dir / "image.nii.gz", image)
            write_image(gt_dir / f"{cid}.nii.gz", label)
            return GeneratedCase(id=cid, group=group, preview=preview(image, label))

        return cid, group, write

    return run_cases(task_id=TASK_ID, out=out, seed=seed, domain=domain, jobs=(job(i) for i in range(cases)),
                     total=cases, progress=progress, workers=workers)
