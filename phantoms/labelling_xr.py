"""`vertebra-labelling-xr`: coronal (AP) and sagittal (lateral) radiographs of the whole spine, C1-L5, with the
vertebra centroids in mm as ground truth.

Each case is a projection of the 3D phantom (`phantoms.ct`): the spine (scoliotic in the coronal plane, with its
kyphosis and lordosis in the sagittal plane), ribs, skull, clavicles, pelvis and femoral heads are painted as excess
attenuation over water on a grid coarse along the beam, the trunk, neck and lungs are added as analytic path lengths
through elliptic cylinders, and the line integral is turned into a radiograph (1 - exp(-mu L)) with blur, noise and
a per-image exposure. The field of view (how much skull and pelvis shows), a small in-plane and axial patient rotation
and, in some cases, metal implants (pedicle screws and rods) vary. Centroids are the vertebrae's 3D label-map
centroids dropped onto the detector plane, so they agree with the image exactly.

The 2D image's physical frame: x (coronal: patient x; sagittal: patient y) to the right, image y = -z downwards, so
superior is up; the centroid [x, y] is in that frame (SimpleITK physical coordinates of the written image).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import gaussian_filter

from evaluators.layout import VERTEBRA_LABELS, VERTEBRA_NAMES
from phantoms import ct
from phantoms.common import GeneratedCase, Job, case_id, case_rng, rounded, run_cases, write_image, write_json
from phantoms.montage import to_uint8

TASK_ID = "vertebra-labelling-xr"
LABELLED = ct.ORDER[:24]  # C1-L5
VIEWS = ("coronal", "sagittal")
MU_WATER = 0.02  # 1/mm, a diagnostic beam's effective attenuation of water
METAL_HU = 9000.0
BONE_BOOST = 3.0


def _axis_rotation(axis: int, degrees: float) -> np.ndarray:
    c, s = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    i, j = [k for k in range(3) if k != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    return matrix


def water_excess(hu: np.ndarray, *, axis: int, step: float) -> np.ndarray:
    """Line integral (mm of water) of the attenuation above water along `axis` of a HU volume with `step` mm
    voxels; bone and metal attenuate several times more at radiographic energies than their CT numbers suggest."""
    excess: np.ndarray = np.where(hu > 0, hu * BONE_BOOST, hu).sum(axis=axis) * (step / 1000.0)
    return excess


@dataclass(frozen=True)
class Exposure:
    """Detector blur (pixels), unsharp-mask strength, display gamma and noise SD (fraction of full scale)."""

    blur: float = 1.0
    flatten: float = 0.7
    gamma: float = 1.0
    noise: float = 0.01


def radiograph(line: np.ndarray, *, pixel_mm: float, exposure: Exposure, rng: np.random.Generator) -> np.ndarray:
    """12-bit radiograph (uint16) from a map of attenuation line integrals: detector blur, the unsharp masking of
    digital radiography (it flattens the body's thickness so bone stands out), a percentile window, gamma, noise."""
    line = gaussian_filter(line, exposure.blur)
    processed = line - exposure.flatten * gaussian_filter(line, 40.0 / pixel_mm)
    black, white = np.percentile(processed, [1.0, 99.8])
    signal = np.clip((processed - black) / max(white - black, 1e-6), 0, 1) ** exposure.gamma
    signal = signal + rng.normal(0, exposure.noise, signal.shape)
    pixels: np.ndarray = np.clip(signal * 4095, 0, 4095).astype(np.uint16)
    return pixels


def sample_spine(rng: np.random.Generator, view: str) -> list[ct.Vertebra]:
    params = ct.sample_params(rng, osteoporosis=float(rng.uniform(0, 0.3)))
    if view == "coronal":
        params = ct.SpineParams(size=params.size, kyphosis=params.kyphosis, scoliosis=float(rng.normal(0, 7)),
                                trabecular_hu=params.trabecular_hu, cortex=params.cortex)
    spine = ct.build_spine(rng, ct.ORDER[:26], params=params, anchor=np.zeros(3), anchor_level="T12")
    beam_axis = 1 if view == "coronal" else 0
    turn = _axis_rotation(beam_axis, float(rng.normal(0, 2.5))) @ _axis_rotation(2, float(rng.normal(0, 4)))
    return ct.rotate_spine(spine, turn, about=spine[18].centre)


def draw_context(layers: ct.Layers, grid: ct.Grid, spine: list[ct.Vertebra], rng: np.random.Generator) -> None:
    """Skull, clavicles, iliac wings and femoral heads around the spine (outside the labels)."""
    c1, t1, s1 = spine[0].centre, spine[7].centre, spine[-1].centre
    ct.paint_ellipsoid(layers, grid, c1 + [0, -15, 95], [72, 92, 88], 1300.0, shell=6.0, core_hu=30.0)
    ct.paint_ellipsoid(layers, grid, c1 + [0, -55, 10], [45, 30, 12], 900.0, shell=4.0, core_hu=30.0)  # mandible
    for side in (-1.0, 1.0):
        ct.paint_capsule(layers, grid, t1 + [side * 15, -55, 25], t1 + [side * 145, -25, 40], 6.5, 900.0,
                         core_hu=200.0)
        ct.paint_ellipsoid(layers, grid, t1 + [side * 175, 0, 10], [26, 26, 28], 900.0, shell=3.0, core_hu=220.0)
        ct.paint_ellipsoid(layers, grid, s1 + [side * 72, 5, 10], [55, 18, 62], 800.0, shell=3.0, core_hu=200.0)
        ct.paint_ellipsoid(layers, grid, s1 + [side * 88, -35, -105], [24, 24, 24], 900.0, shell=3.0,
                           core_hu=220.0)


def draw_implants(layers: ct.Layers, grid: ct.Grid, spine: list[ct.Vertebra], rng: np.random.Generator) -> None:
    """Pedicle screws in 3-6 consecutive thoracolumbar levels joined by two rods."""
    count = int(rng.integers(3, 7))
    first = int(rng.integers(ct.ORDER.index("T9"), ct.ORDER.index("L5") - count + 2))
    for side in (-1.0, 1.0):
        heads = []
        for v in spine[first : first + count]:
            head_local = np.array([side * (v.canal + 6), ct.canal_centre(v) + v.canal, 0.0])
            tip_local = np.array([side * 6.0, -0.3 * v.half_depth, 0.0])
            head, tip = v.centre + head_local @ v.axes, v.centre + tip_local @ v.axes
            ct.paint_capsule(layers, grid, head, tip, 3.0, METAL_HU)
            heads.append(head)
        for p, q in zip(heads[:-1], heads[1:]):
            ct.paint_capsule(layers, grid, p, q, 2.8, METAL_HU)


def soft_tissue_path(grid: ct.Grid, spine: list[ct.Vertebra], view: str, rng: np.random.Generator) -> np.ndarray:
    """Water-equivalent path length (mm) through trunk, neck and lungs for every detector pixel (z, u)."""
    nz, ny, nx = grid.shape
    z = np.arange(nz) * grid.spacing[2] + grid.origin[2]
    centres = np.array([v.centre for v in spine])
    order = np.argsort(centres[:, 2])
    spine_x = np.interp(z, centres[order, 2], centres[order, 0])
    spine_y = np.interp(z, centres[order, 2], centres[order, 1])
    z_t1, z_t11, z_s1 = spine[7].centre[2], spine[17].centre[2], spine[-1].centre[2]
    size = rng.uniform(0.85, 1.15)
    half_w = size * np.interp(z, [z_s1 - 80, z_t11, z_t1 - 20, z_t1, z_t1 + 25], [175, 150, 165, 185, 60])
    half_d = size * np.interp(z, [z_s1 - 80, z_t11, z_t1, z_t1 + 25], [115, 120, 105, 55])
    centre_y = spine_y - np.interp(z, [z_t1, z_t1 + 25], [60, 20])
    if view == "coronal":
        u = (np.arange(nx) * grid.spacing[0] + grid.origin[0])[None, :] - spine_x[:, None]
        semi, across = half_w[:, None], half_d[:, None]
        lung_u, lung_semi, lung_across = half_w[:, None] * 0.5, half_w[:, None] * 0.36, half_d[:, None] * 0.7
    else:
        u = (np.arange(ny) * grid.spacing[1] + grid.origin[1])[None, :] - centre_y[:, None]
        semi, across = half_d[:, None], half_w[:, None]
        lung_semi, lung_across = half_d[:, None] * 0.7, half_w[:, None] * 0.36

    def chord(offset: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        length: np.ndarray = 2 * b * np.sqrt(np.clip(1 - (offset / a) ** 2, 0, 1))
        return length

    path = chord(u, semi, across)
    thorax = ((z > z_t11) & (z < z_t1 + 10))[:, None]
    if view == "coronal":  # the two lungs side by side
        lungs = chord(u - lung_u, lung_semi, lung_across) + chord(u + lung_u, lung_semi, lung_across)
    else:  # both lungs lie on the beam
        lungs = 2 * chord(u, lung_semi, lung_across)
    thickness: np.ndarray = path - 0.8 * thorax * lungs
    return thickness


def make_case(rng: np.random.Generator, *, small: bool) -> tuple[sitk.Image, str, dict[str, list[float]]]:
    """(2D image, view, centroids {name: [x, y]} in mm)."""
    view = str(rng.choice(VIEWS))
    spine = sample_spine(rng, view)
    pixel = float(rng.uniform(1.2, 1.8)) * (3.0 if small else 1.0)
    depth = 4.0 * (2.0 if small else 1.0)
    top = spine[0].centre[2] + float(rng.uniform(15, 140))  # variable field of view: some skull ...
    bottom = spine[23].centre[2] - float(rng.uniform(25, 170))  # ... and some pelvis
    centre = spine[18].centre
    half_lateral = float(rng.uniform(130, 170))
    spacing = (pixel, depth, pixel) if view == "coronal" else (depth, pixel, pixel)
    low = np.array([centre[0] - half_lateral, centre[1] - 200.0, bottom])
    high = np.array([centre[0] + half_lateral, centre[1] + 120.0, top])
    nz, ny, nx = (int(np.ceil((h - lo) / s)) + 1 for h, lo, s in zip(high[::-1], low[::-1], spacing[::-1]))
    shape = (nz, ny, nx)
    grid = ct.Grid(shape=shape, spacing=spacing, origin=tuple(low))
    layers = ct.render(grid, spine, rng, background=np.zeros(shape, np.float32))
    draw_context(layers, grid, spine, rng)
    if rng.random() < 0.15:
        draw_implants(layers, grid, spine, rng)
    beam = 1 if view == "coronal" else 2  # numpy axis of the beam in (z, y, x)
    line = MU_WATER * (soft_tissue_path(grid, spine, view, rng) + water_excess(layers.hu, axis=beam, step=depth))
    exposure = Exposure(blur=rng.uniform(0.5, 1.2) * (1.0 if small else 1.5), flatten=rng.uniform(0.6, 0.8),
                        gamma=rng.uniform(0.8, 1.3), noise=rng.uniform(0.005, 0.02))
    pixels = radiograph(line, pixel_mm=pixel, exposure=exposure, rng=rng)[::-1]  # superior up
    keep = [VERTEBRA_LABELS[n] for n in LABELLED]
    centroids3d = ct.centroids_mm(layers.vertebra, grid, keep)
    lateral = 0 if view == "coronal" else 1
    centroids = {VERTEBRA_NAMES[k]: rounded([c[lateral], -c[2]], 2) for k, c in centroids3d.items()}
    image = sitk.GetImageFromArray(pixels)
    image.SetSpacing((pixel, pixel))
    image.SetOrigin((float(low[lateral]), float(-(low[2] + (shape[0] - 1) * pixel))))
    return image, view, centroids


def generate(*, out: Path, cases: int, seed: int, domain: str, layout: str, small: bool, progress: bool,
             workers: int = 1) -> Path:
    def job(index: int) -> Job:
        cid = case_id(index)

        def write(input_dir: Path, gt_dir: Path) -> GeneratedCase:
            image, view, centroids = make_case(case_rng(seed, TASK_ID, index), small=small)
            write_image(input_dir / "image.nii.gz", image)
            write_json(input_dir / "meta.json", {"view": view})
            write_json(gt_dir / f"{cid}.json", {"centroids": centroids})
            return GeneratedCase(id=cid, group=None, preview=to_uint8(sitk.GetArrayFromImage(image)))

        return cid, None, write

    return run_cases(task_id=TASK_ID, out=out, seed=seed, domain=domain, jobs=(job(i) for i in range(cases)),
                     total=cases, progress=progress, workers=workers)
