"""`metastatic-body-ct`: CT patches (128 x 128 x 64 voxels at 1 mm) around one thoracic or lumbar vertebra, with
lytic (darker) and blastic (brighter) metastases in its body; ground truth: the trabecular-centrum mask of that
vertebra (the body inside its cortical shell, lesions included).

The test split repeats every base case in four groups, as the paper's robustness study did: `given` (centred on
the body, native 1 mm), `translated` (the patch centre moved by up to 20 mm in-plane and 10 mm along the spine),
`resampled` (rendered at a coarser anisotropic scanner resolution, then linearly resampled to the 1 mm patch grid,
the mask resampled the same way and thresholded at one half) and `translated+resampled`. The anatomy is the same in
all four, so the mask moves and blurs with the image.
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


def _resample_to(array: np.ndarray, grid: ct.Grid, reference: sitk.Image) -> np.ndarray:
    image = volume_image(array.astype(np.float32), spacing_xyz=grid.spacing, origin_xyz=grid.origin,
                         dtype=np.float32)
    return sitk.GetArrayFromImage(sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear, -1000.0))


def make_case(rng: np.random.Generator, *, group: str, small: bool) -> tuple[sitk.Image, sitk.Image]:
    """(image, mask) of one group's version of the case drawn from `rng` (the anatomy is drawn first, so every
    group of a base case shares it)."""
    anatomy = sample_anatomy(rng)
    shape, spacing = (SMALL_PATCH, (1.5, 1.5, 1.5)) if small else (PATCH, (1.0, 1.0, 1.0))
    body_centre = anatomy[2].centre
    offset = rng.uniform(-1, 1, 3) * [20.0, 20.0, 10.0]
    coarse = (float(rng.uniform(1.4, 2.2)), float(rng.uniform(2.0, 3.5)))
    noise_sd = float(rng.uniform(12, 35))
    centre = body_centre + (offset if "translated" in group else 0.0)
    extent = (np.array(shape[::-1]) - 1) * np.asarray(spacing)
    origin = centre - extent / 2
    if "resampled" not in group:
        hu, mask, _ = render_patch(rng, anatomy, shape=shape, spacing=spacing, centre=centre, noise_sd=noise_sd)
    else:
        native = (coarse[0] * spacing[0], coarse[0] * spacing[1], coarse[1] * spacing[2])
        nz, ny, nx = (int(np.ceil(e / s)) + 2 for e, s in zip(extent[::-1], native[::-1]))
        native_shape = (nz, ny, nx)
        hu_c, mask_c, grid_c = render_patch(rng, anatomy, shape=native_shape, spacing=native, centre=centre,
                                            noise_sd=noise_sd)
        reference = volume_image(np.zeros(shape, np.int16), spacing_xyz=spacing, origin_xyz=origin)
        hu = _resample_to(hu_c, grid_c, reference)
        mask = _resample_to(mask_c.astype(np.float32), grid_c, reference) >= 0.5
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
