"""Small synthetic SpineBench datasets (docs/formats.md layout) for the CT/XR baseline tests, used when
``phantoms.generate`` has no generator for the task yet. Deliberately simple shapes: they exercise the methods'
input/output contract and let tiny training show a falling loss, nothing more."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from evaluators.layout import CaseEntry, Manifest, VERTEBRA_NAMES, write_manifest

LABELLING_NAMES = [VERTEBRA_NAMES[i] for i in range(1, 25)]  # C1..L5


def _write(image: np.ndarray, spacing, path: Path, *, origin=None) -> sitk.Image:
    out = sitk.GetImageFromArray(image)
    out.SetSpacing(tuple(float(s) for s in spacing))
    if origin is not None:
        out.SetOrigin(tuple(float(o) for o in origin))
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(out, str(path))
    return out


def _manifest(root: Path, task: str, split: str, cases: list[CaseEntry], seed: int) -> None:
    write_manifest(root, Manifest(task=task, split=split, cases=tuple(cases), domain=split, seed=seed))


def metastatic(root: Path, *, cases: int, seed: int, test: bool = False, shape=(24, 32, 32)) -> Path:
    """A cylinder-like vertebral body (cortical shell, trabecular centrum = mask) with a posterior arch in soft
    tissue; the test split repeats every base case in the four groups."""
    rng = np.random.default_rng(seed)
    groups = ("given", "translated", "resampled", "translated+resampled") if test else (None,)
    entries = []
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    for index in range(cases):
        ry, rx, rz = rng.uniform(0.22, 0.3) * shape[1], rng.uniform(0.25, 0.33) * shape[2], 0.35 * shape[0]
        tissue = rng.normal(40, 25, shape).astype(np.float32)
        for group in groups:
            cy, cx, cz = shape[1] / 2, shape[2] / 2, shape[0] / 2
            if group and "translated" in group:
                cy += rng.choice([-1, 1]) * 0.2 * shape[1]
                cx += rng.choice([-1, 1]) * 0.2 * shape[2]
            r = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
            body = (r <= 1.0) & (np.abs(zz - cz) <= rz)
            centrum = (r <= 0.7) & (np.abs(zz - cz) <= rz - 2)
            arch = (((yy - cy - ry - 3) / 3) ** 2 + ((xx - cx) / (rx * 0.8)) ** 2 <= 1) & (np.abs(zz - cz) <= rz)
            image = tissue.copy()
            image[body | arch] = 700.0
            image[centrum] = rng.uniform(150, 300)
            image += rng.normal(0, 30, shape).astype(np.float32)
            if group and "resampled" in group:
                img = sitk.GetImageFromArray(image)
                spacing = rng.uniform(1.0, 2.0)
                size = [max(2, int(round(n / spacing))) for n in img.GetSize()]
                low = sitk.Resample(img, size, sitk.Transform(), sitk.sitkLinear, (0, 0, 0), (spacing,) * 3)
                image = sitk.GetArrayFromImage(sitk.Resample(low, img)).astype(np.float32)
            case_id = f"case_{index:04d}" + (f"_{group.replace('+', '_')}" if group else "")
            _write(image, (1.0, 1.0, 1.0), root / "inputs" / case_id / "image.nii.gz")
            _write(centrum.astype(np.uint8), (1.0, 1.0, 1.0), root / "ground_truth" / f"{case_id}.nii.gz")
            entries.append(CaseEntry(id=case_id, group=group))
    _manifest(root, "metastatic-body-ct", "test" if test else "train", entries, seed)
    return root


def lumbosacral(root: Path, *, cases: int, seed: int, test: bool = False, shape=(24, 32, 32)) -> Path:
    """Stacked vertebral bodies (bone 1) with discs between them (2) and a nerve tube behind (3) at
    1 × 0.5 × 0.5 mm; the test split has an in-domain and a cross-dataset group (other contrast and noise)."""
    rng = np.random.default_rng(seed)
    entries = []
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    groups = ("in-domain", "cross-dataset") if test else (None,)
    for index in range(cases):
        for group in groups:
            cross = group == "cross-dataset"
            cy, cx = shape[1] * rng.uniform(0.4, 0.5), shape[2] * rng.uniform(0.45, 0.55)
            radius = shape[2] * rng.uniform(0.22, 0.28)
            disk = ((yy - cy) / radius) ** 2 + ((xx - cx) / (radius * 1.2)) ** 2 <= 1
            period = rng.uniform(7, 9)
            phase = (zz + rng.uniform(0, period)) % period
            labels = np.zeros(shape, np.uint8)
            labels[disk & (phase >= 2)] = 1
            labels[disk & (phase < 2)] = 2
            nerve = ((yy - cy - radius - 3) ** 2 + (xx - cx) ** 2) <= 2.5**2
            labels[nerve] = 3
            values = np.array([-60.0, 450.0, 90.0, 20.0]) * (rng.uniform(0.7, 0.85) if cross else 1.0)
            image = values[labels] + rng.normal(0, 45 if cross else 30, shape)
            case_id = f"case_{index:04d}" + ("_x" if cross else "")
            _write(image.astype(np.float32), (0.5, 0.5, 1.0), root / "inputs" / case_id / "image.nii.gz")
            _write(labels, (0.5, 0.5, 1.0), root / "ground_truth" / f"{case_id}.nii.gz")
            entries.append(CaseEntry(id=case_id, group=group))
    _manifest(root, "lumbosacral-ct", "test" if test else "train", entries, seed)
    return root


def labelling(root: Path, *, cases: int, seed: int, test: bool = False, shape=(96, 40)) -> Path:
    """A radiograph-like 2D image with 24 bright blocks along a gently curved spine (C1 at the top), pixel
    spacing 2 mm and a non-zero origin; views alternate sagittal/coronal."""
    rng = np.random.default_rng(seed)
    entries = []
    yy, xx = np.meshgrid(np.arange(shape[0], dtype=np.float32), np.arange(shape[1], dtype=np.float32),
                         indexing="ij")
    spacing, origin = 2.0, (-10.0, 5.0)
    for index in range(cases):
        top, bottom = rng.uniform(4, 8), shape[0] - rng.uniform(4, 8)
        rows = np.linspace(top, bottom, 24) + rng.normal(0, 0.3, 24)
        bend, centre = rng.uniform(-5, 5), shape[1] / 2 + rng.uniform(-3, 3)
        cols = centre + bend * np.sin(np.linspace(0, np.pi, 24))
        image = rng.normal(60, 12, shape).astype(np.float32)
        for level, (r, c) in enumerate(zip(rows, cols)):
            half_w = 2.0 + 2.5 * level / 23
            image[(np.abs(yy - r) <= 1.2) & (np.abs(xx - c) <= half_w)] += 120
        case_id = f"case_{index:04d}"
        view = "sagittal" if index % 2 == 0 else "coronal"
        _write(image, (spacing, spacing), root / "inputs" / case_id / "image.nii.gz", origin=origin)
        (root / "inputs" / case_id / "meta.json").write_text(json.dumps({"view": view}))
        centroids = {
            name: [origin[0] + float(c) * spacing, origin[1] + float(r) * spacing]
            for name, r, c in zip(LABELLING_NAMES, rows, cols)
        }
        (root / "ground_truth").mkdir(parents=True, exist_ok=True)
        (root / "ground_truth" / f"{case_id}.json").write_text(json.dumps({"centroids": centroids}))
        entries.append(CaseEntry(id=case_id))
    _manifest(root, "vertebra-labelling-xr", "test" if test else "train", entries, seed)
    return root


BUILDERS = {"metastatic-body-ct": metastatic, "lumbosacral-ct": lumbosacral, "vertebra-labelling-xr": labelling}


def build(task: str, out: Path, *, cases: int, seed: int, test: bool = False) -> Path:
    """E2's small phantoms when the task's generator exists, else the builders above."""
    import importlib.util

    import phantoms

    module = {"metastatic-body-ct": "metastatic", "lumbosacral-ct": "lumbosacral",
              "vertebra-labelling-xr": "labelling_xr"}[task]
    if importlib.util.find_spec(f"phantoms.{module}") is not None:
        return phantoms.generate(task, out=out, cases=cases, seed=seed, domain="test" if test else "train",
                                 small=True, progress=False)
    return BUILDERS[task](Path(out), cases=cases, seed=seed, test=test)


def without_ground_truth(dataset: Path, copy: Path) -> Path:
    """A copy of `dataset` with its ground_truth/ folder removed (what predict() may see)."""
    import shutil

    shutil.copytree(dataset, copy)
    shutil.rmtree(copy / "ground_truth")
    return copy
