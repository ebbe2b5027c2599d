"""`metastatic-body-ct`: CT patches (128 x 128 x 64 voxels at 1 mm) around one thoracic or lumbar vertebra, with
lytic (darker) and blastic (brighter) metastases in its body; ground truth: the trabecular-centrum mask of that
vertebra (the body inside its cortical shell, lesions included).

The test split repeats every base case in four groups, as the paper's robustness study did: `given` (centred on
the body, native 1 mm), `translated` (the patch centre moved by up to 20 mm in-plane and 10 mm along the spine),
`resampled` (the paper's R condition: the image as a scanner with isotropic voxels of 1–2 mm would have taken it,
then resampled back to the patch grid; the ground-truth mask is the given one, since the anatomy did not change) and
`translated+resampled`. The anatomy is the same in all four, so the mask moves with the patch but is never degraded.
For the 1.5 mm `small` patches, a drawn voxel size at or below 1.5 mm leaves the image as it is (the same rule as
the R training augmentation of `baselines.metastatic`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk

from phantoms import ct
from phantoms.common import GeneratedCase, Job, case_id, case_rng, run_cases, volume_image, write_image
from phantoms.montage import to_uint8

#: (chosen level, the spine around it, its vertebra, its lesions).
Anatomy = tuple[str, list[ct.Vertebra], ct.Vertebra, list[ct.Lesion]]

TASK_ID = "metastatic-body-ct"
GROUPS = ("given", "translated", "resampled", "translated+resampled")
PATCH = (64, 128, 128)  # (z, y, x) voxels at 1 mm
SMALL_PATCH = (32, 48, 48)  # (z, y, x) voxels at 1.5 mm: still the whole body, a few times fewer voxels
LEVELS = [f"T{i}" for i in range(6, 13)] + [f"L{i}" for i in range(1, 5)]


def sample_anatomy(rng: np.random.Generator) -> Anatomy:
    """The spine around a chosen vertebra (centred at the world origin) and its lesions."""
    level = str(rng.choice(LEVELS))
    index = ct.ORDER.index(level)
    names = ct.ORDER[index - 3 : index + 4]
    params = ct.sample_params(rng, osteoporosis=float(rng.uniform(0, 0.5)))
    spine = ct.build_spine(rng, names, params=params, anchor=np.zeros(3), anchor_level=level)
    target = spine[names.index(level)]
    lesions: list[ct.Lesion] = []
    for _ in range(int(min(rng.poisson(1.6), 4))):
        lytic = rng.random() < 0.55
        radius = float(rng.uniform(3.0, 9.0))
        centre = rng.uniform(-0.55, 0.55, 3) * [target.half_width, target.half_depth, target.half_height]
        hu = float(rng.uniform(-20, 60) if lytic else rng.uniform(450, 900))
        lesions.append((level, centre, radius, hu))
    return level, spine, target, lesions


def render_patch(
    rng: np.random.Generator, anatomy: Anatomy, *, shape: tuple[int, int, int], spacing: tuple[float, float, float],
    centre: npt.ArrayLike, noise_sd: float,
) -> tuple[np.ndarray, np.ndarray, ct.Grid]:
    """HU array and centrum mask on the grid of `shape` voxels of `spacing` mm centred at world `centre`."""
    level, spine, target, lesions = anatomy
    extent = (np.array(shape[::-1]) - 1) * np.asarray(spacing)
    grid = ct.Grid(shape=shape, spacing=spacing, origin=tuple(np.asarray(centre) - extent / 2))
    thorax = 1e9 if level.startswith("L") else -1e9
    background = ct.body_background(grid, rng, spine_centre=target.centre, thorax_z=thorax)
    layers = ct.render(grid, spine, rng, background=background, centrum_of=target.label, lesions=lesions)
    return ct.add_noise(layers.hu, rng, noise_sd), layers.centrum, grid


def coarser_scan(hu: np.ndarray, *, spacing: tuple[float, float, float], voxel_mm: float) -> np.ndarray:
    """`hu` (z, y, x) on a grid of `spacing` (x, y, z) mm as a scan with isotropic `voxel_mm` voxels would show it,
    back on the same grid: each coarse voxel averages a box of `voxel_mm` (approximated by a Gaussian of the same
    variance, sigma² = (voxel_mm² − spacing²) / 12 per axis), sampled on the coarse grid and interpolated back
    linearly. Axes whose spacing is already at least `voxel_mm` are left as they are."""
    if all(s >= voxel_mm for s in spacing):
        return hu.astype(np.float32)
    image = sitk.GetImageFromArray(hu.astype(np.float32))
    image.SetSpacing(tuple(float(s) for s in spacing))
    sigma = [float(np.sqrt(max(voxel_mm**2 - s**2, 0.0) / 12.0)) for s in spacing]
    smoothed = sitk.SmoothingRecursiveGaussian(image, sigma) if max(sigma) > 0 else image
    size = image.GetSize()
    coarse_spacing = [max(s, voxel_mm) for s in spacing]
    coarse_size = [max(2, int(round(n * s / c))) for n, s, c in zip(size, spacing, coarse_spacing)]
    # Both grids cover the same physical box (voxel centres move, the outer edges stay).
    coarse_origin = [(c - s) / 2 for s, c in zip(spacing, coarse_spacing)]
    coarse = sitk.Resample(smoothed, coarse_size, sitk.Transform(), sitk.sitkLinear, coarse_origin, coarse_spacing,
                           image.GetDirection(), -1000.0, sitk.sitkFloat32)
    back = sitk.Resample(coarse, image, sitk.Transform(), sitk.sitkLinear, -1000.0, sitk.sitkFloat32)
    return sitk.GetArrayFromImage(back)


def make_case(rng: np.random.Generator, *, group: str, small: bool) -> tuple[sitk.Image, sitk.Image]:
    """(image, mask) of one group's version of the case drawn from `rng` (the anatomy is drawn first, so every
    group of a base case shares it)."""
    anatomy = sample_anatomy(rng)
    shape, spacing = (SMALL_PATCH, (1.5, 1.5, 1.5)) if small else (PATCH, (1.0, 1.0, 1.0))
    body_centre = anatomy[2].centre
    offset = rng.uniform(-1, 1, 3) * [20.0, 20.0, 10.0]
    voxel_mm = float(rng.uniform(1.0, 2.0))  # the R condition's scanner voxel size (paper: 1-2 mm)
    rng.uniform()  # a draw the earlier anisotropic R condition made: the other groups' patches stay as they were
    noise_sd = float(rng.uniform(12, 35))
    centre = body_centre + (offset if "translated" in group else 0.0)
    extent = (np.array(shape[::-1]) - 1) * np.asarray(spacing)
    origin = centre - extent / 2
    hu, mask, _ = render_patch(rng, anatomy, shape=shape, spacing=spacing, centre=centre, noise_sd=noise_sd)
    if "resampled" in group:
        hu = coarser_scan(hu, spacing=spacing, voxel_mm=voxel_mm)
    image = volume_image(ct.to_hu16(hu), spacing_xyz=spacing, origin_xyz=origin)
    label = volume_image(mask.astype(np.uint8), spacing_xyz=spacing, origin_xyz=origin, dtype=np.uint8)
    return image, label


def preview(image: sitk.Image) -> np.ndarray:
    """Mid-sagittal slice, superior up."""
    array = sitk.GetArrayFromImage(image)
    return to_uint8(array[::-1, :, array.shape[2] // 2], low=-250.0, high=1000.0)


def generate(*, out: Path, cases: int, seed: int, domain: str, layout: str, small: bool, progress: bool,
             workers: int = 1) -> Path:
    groups = GROUPS if domain == "test" else (None,)

    def job(index: int, group: str | None) -> Job:
        base = case_id(index)
        cid = base if group is None else f"{base}_{group.replace('+', '_')}"

        def write(input_dir: Path, gt_dir: Path) -> GeneratedCase:
            image, mask = make_case(case_rng(seed, TASK_ID, index), group=group or "given", small=small)
            write_image(input_dir / "image.nii.gz", image)
            write_image(gt_dir / f"{cid}.nii.gz", mask)
            return GeneratedCase(id=cid, group=group, preview=preview(image))

        return cid, group, write

    jobs = (job(i, g) for i in range(cases) for g in groups)
    return run_cases(task_id=TASK_ID, out=out, seed=seed, domain=domain, jobs=jobs, total=cases * len(groups),
                     progress=progress, workers=workers)
