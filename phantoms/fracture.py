"""`fracture-ct`: thoraco-lumbar CT volumes (HU, anisotropic voxels) with osteoporotic vertebral fractures graded
by Genant's semi-quantitative scale.

Each patient gets an osteoporosis severity s in [0, 1]: trabecular density falls with it and each vertebra fractures
with probability 0.04 + 0.32 s (about 20 % of vertebrae overall, and about one patient in ten without any fracture).
A fractured vertebra's height is lost by its grade's range (grade 1: 20-25 %, 2: 25-40 %, 3: over 40 %) in one of
three shapes (wedge: anterior collapse, biconcave: central, crush: the whole endplate); normal vertebrae keep a
physiological anterior wedge under 8 %. Inputs: the image, the vertebra label map (VerSe integers, complete
vertebrae only; the partial ones at the field-of-view edges are shown but unlabelled) and the centroids in mm
(from the label map). Ground truth: `vertebrae.csv` with grade and shape per labelled vertebra.

`fracture_free` (a fraction in [0, 1], default 0) makes that share of the patients fracture-free whatever their
severity, for cross-validations that need several negative patients per fold: case index i is one of them when
floor((i + 1) f) > floor(i f), so they are spread evenly over the case list. Such a case draws exactly the random
numbers it would draw otherwise (its fractures are sampled, then dropped), so its anatomy, density and noise are
those of the same case without the option; with the default 0 the output is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
from tqdm import tqdm

from evaluators.layout import VERTEBRA_LABELS, VERTEBRA_NAMES
from phantoms import ct, layouts
from phantoms.common import (
    GeneratedCase,
    Job,
    case_id,
    case_rng,
    rounded,
    run_cases,
    table_rows,
    volume_image,
    write_image,
    write_json,
)
from phantoms.montage import to_uint8

TASK_ID = "fracture-ct"
GRADE_LOSS = {1: (0.205, 0.245), 2: (0.26, 0.39), 3: (0.42, 0.6)}
GRADE_WEIGHTS = (0.4, 0.35, 0.25)
FRACTURE_SHAPES = ("wedge", "biconcave", "crush")
SHAPE_WEIGHTS = (0.5, 0.3, 0.2)
IN_PLANE = 256
SMALL_IN_PLANE = 64


def sample_fractures(rng: np.random.Generator, names: list[str], severity: float) -> dict[str, tuple[int, str, float]]:
    fractures = {}
    for name in names:
        if rng.random() < 0.04 + 0.32 * severity:
            grade = int(rng.choice([1, 2, 3], p=GRADE_WEIGHTS))
            shape = str(rng.choice(FRACTURE_SHAPES, p=SHAPE_WEIGHTS))
            fractures[name] = (grade, shape, float(rng.uniform(*GRADE_LOSS[grade])))
    return fractures


def make_case(
    rng: np.random.Generator, *, small: bool, fracture_free: bool = False
) -> tuple[sitk.Image, sitk.Image, dict[str, list[float]], list[tuple[str, int, str]]]:
    """(image, label map, centroids {name: [x, y, z]}, vertebrae [(name, grade, shape)]); `fracture_free` drops the
    sampled fractures (after drawing them, so the rest of the case is unchanged)."""
    top = ct.ORDER.index(str(rng.choice([f"T{i}" for i in range(4, 10)])))
    bottom = ct.ORDER.index(str(rng.choice([f"L{i}" for i in range(2, 6)])))
    labelled = ct.ORDER[top : bottom + 1]
    drawn = ct.ORDER[top - 1 : bottom + 2]  # one partial neighbour at each end
    severity = float(rng.beta(1.6, 2.4))
    params = ct.sample_params(rng, osteoporosis=severity)
    fractures = sample_fractures(rng, labelled, severity)
    if fracture_free:
        fractures = {}
    spine = ct.build_spine(rng, drawn, params=params, anchor=np.zeros(3), anchor_level=labelled[len(labelled) // 2],
                           fractures=fractures)
    first, last = spine[1], spine[-2]
    z_top = first.centre[2] + first.half_height + 8.0 + rng.uniform(0, 6)
    z_bottom = last.centre[2] - last.half_height - 8.0 - rng.uniform(0, 6)
    pixel = float(rng.uniform(0.7, 0.9))
    slice_mm = float(rng.uniform(1.5, 2.5))
    n = IN_PLANE
    if small:
        pixel, slice_mm, n = pixel * IN_PLANE / SMALL_IN_PLANE, slice_mm * 2.5, SMALL_IN_PLANE
    spacing = (pixel, pixel, slice_mm)
    centre_xy = np.mean([v.centre[:2] for v in spine], axis=0) + [rng.normal(0, 5), 25.0 + rng.normal(0, 5)]
    nz = int(np.ceil((z_top - z_bottom) / slice_mm)) + 1
    origin = (centre_xy[0] - pixel * (n - 1) / 2, centre_xy[1] - pixel * (n - 1) / 2, z_bottom)
    grid = ct.Grid(shape=(nz, n, n), spacing=spacing, origin=origin)
    thorax_z = spine[drawn.index("T11")].centre[2]  # lung bases; every drawn range spans T9-L2
    background = ct.body_background(grid, rng, spine_centre=spine[len(spine) // 2].centre, thorax_z=thorax_z,
                                    contrast_aorta=bool(rng.random() < 0.5))
    layers = ct.render(grid, spine, rng, background=background)
    hu = ct.add_noise(layers.hu, rng, float(rng.uniform(12, 30)))
    keep = [VERTEBRA_LABELS[name] for name in labelled]
    labels = np.where(np.isin(layers.vertebra, keep), layers.vertebra, 0).astype(np.uint8)
    centroids = {VERTEBRA_NAMES[k]: rounded(c, 2) for k, c in ct.centroids_mm(labels, grid, keep).items()}
    vertebrae = [(name, *fractures.get(name, (0, "normal", 0.0))[:2]) for name in labelled if name in centroids]
    image = volume_image(ct.to_hu16(hu), spacing_xyz=spacing, origin_xyz=origin)
    label_image = volume_image(labels, spacing_xyz=spacing, origin_xyz=origin, dtype=np.uint8)
    return image, label_image, centroids, vertebrae


def preview(image: sitk.Image) -> np.ndarray:
    """Mid-sagittal slice, superior up, stretched to square-ish voxels."""
    array = sitk.GetArrayFromImage(image)
    sx, _, sz = image.GetSpacing()
    sagittal = to_uint8(array[::-1, :, array.shape[2] // 2], low=-250.0, high=1000.0)
    rows = max(1, int(round(sagittal.shape[0] * sz / sx)))
    return np.repeat(sagittal, int(np.ceil(rows / sagittal.shape[0])), axis=0)


def forced_fracture_free(index: int, fraction: float) -> bool:
    """Whether case `index` is made fracture-free for a `fracture_free` fraction (evenly spread indices)."""
    return int(np.floor((index + 1) * fraction + 1e-9)) > int(np.floor(index * fraction + 1e-9))


def generate(*, out: Path, cases: int, seed: int, domain: str, layout: str, small: bool, progress: bool,
             workers: int = 1, fracture_free: float = 0.0) -> Path:
    if not 0.0 <= float(fracture_free) <= 1.0:
        raise ValueError(f"fracture_free must be a fraction in [0, 1], got {fracture_free}")
    if layout == "verse":
        if fracture_free:
            raise ValueError("fracture_free is only available for the spinebench layout")
        return write_verse(out=out, cases=cases, seed=seed, small=small, progress=progress)

    def job(index: int) -> Job:
        cid = case_id(index)

        def write(input_dir: Path, _gt_dir: Path) -> GeneratedCase:
            image, labels, centroids, vertebrae = make_case(case_rng(seed, TASK_ID, index), small=small,
                                                            fracture_free=forced_fracture_free(index, fracture_free))
            write_image(input_dir / "image.nii.gz", image)
            write_image(input_dir / "vertebrae.nii.gz", labels)
            write_json(input_dir / "centroids.json", centroids)
            rows = [[cid, name, grade, shape] for name, grade, shape in vertebrae]
            return GeneratedCase(id=cid, group=None, preview=preview(image), rows={"vertebrae": rows})

        return cid, None, write

    def finish(gt_dir: Path, done: list[GeneratedCase]) -> None:
        frame = pd.DataFrame(table_rows(done, "vertebrae"), columns=["case_id", "vertebra", "grade", "shape"])
        frame.to_csv(gt_dir / "vertebrae.csv", index=False)

    return run_cases(task_id=TASK_ID, out=out, seed=seed, domain=domain, jobs=(job(i) for i in range(cases)),
                     total=cases, progress=progress, finish=finish, workers=workers)


def write_verse(*, out: Path, cases: int, seed: int, small: bool, progress: bool) -> Path:
    """fracture-ct cases in the VerSe layout, with the fracture grades table."""
    rows: list[list[object]] = []
    for index in tqdm(range(cases), desc="phantoms fracture-ct (verse)", disable=not progress):
        image, labels, centroids, vertebrae = make_case(case_rng(seed, TASK_ID, index), small=small)
        subject = f"sub-verse{index + 1:03d}"
        write_image(Path(out) / "rawdata" / subject / f"{subject}_ct.nii.gz", image)
        derivatives = Path(out) / "derivatives" / subject
        write_image(derivatives / f"{subject}_seg-vert_msk.nii.gz", labels)
        entries: list[dict[str, object]] = [{"direction": layouts.axis_codes(image)}]
        for name, point in centroids.items():
            index_xyz = image.TransformPhysicalPointToContinuousIndex([float(p) for p in point])
            entries.append({"label": VERTEBRA_LABELS[name], **{k: round(v, 3) for k, v in zip("XYZ", index_xyz)}})
        (derivatives / f"{subject}_seg-subreg_ctd.json").write_text(json.dumps(entries, indent=1) + "\n")
        rows.extend([subject, name, grade, shape] for name, grade, shape in vertebrae)
    pd.DataFrame(rows, columns=["subject", "vertebra", "grade", "shape"]).to_csv(Path(out) / layouts.VERSE_GRADES,
                                                                                 index=False)
    return Path(out)
