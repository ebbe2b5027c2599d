"""`aasce-cobb`: AP spinal radiographs of adolescents with scoliosis, with the 68 corner landmarks of T1-L5 and the
three Cobb angles computed from them with the official algorithm (`evaluators.cobb.cobb_angles`).

Anatomy is laid out in millimetres (vertebral bodies growing from T1 to L5, discs, pedicles, spinous and transverse
processes, ribs, cervical spine, sacrum and iliac wings, clavicles, humeral heads, skull), then scaled so that the
spine spans the image's field of view. Bone is painted at a working resolution of about 700 rows, soft tissue (body
outline, lungs, mediastinum) on a coarse grid, then both are blurred, upsampled to the full image and given a per-image
exposure (contrast, gamma, noise). The vertebral bodies are the landmark quadrilaterals themselves, so the ground
truth agrees with the image by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from phantoms import layouts
from phantoms.common import GeneratedCase, Job, case_id, case_rng, run_cases, table_rows, write_png
from phantoms.curves import Curve, centreline, quad_corners, sample_curve
from phantoms.raster import add_ellipse, add_polygon, add_ring, add_strip, resize

TASK_ID = "aasce-cobb"


@dataclass(frozen=True)
class RadiographConfig:
    """Image size and field of view. `spine_top`/`spine_bottom`: where T1's top and L5's bottom fall, as fractions of
    the image height; `working_rows`: resolution the anatomy is painted at before upsampling."""

    height: tuple[int, int]
    aspect: tuple[float, float]
    spine_top: tuple[float, float]
    spine_bottom: tuple[float, float]
    gamma: tuple[float, float]
    window: tuple[float, float]  # grey level of soft tissue, of dense bone (0-1)
    working_rows: int = 720


PRESETS = {
    "train": RadiographConfig(height=(1000, 3000), aspect=(0.36, 0.5), spine_top=(0.03, 0.11),
                              spine_bottom=(0.86, 0.96), gamma=(0.75, 1.15), window=(0.12, 0.9)),
    # the challenge's test images showed more of the body and had a different exposure
    "test": RadiographConfig(height=(1400, 3000), aspect=(0.42, 0.55), spine_top=(0.2, 0.27),
                             spine_bottom=(0.68, 0.76), gamma=(1.2, 1.6), window=(0.22, 0.82)),
}
SMALL_HEIGHT = (224, 320)


@dataclass(frozen=True)
class Spine:
    corners_mm: np.ndarray  # (17, 4, 2) TL, TR, BL, BR of T1..L5
    centres_mm: np.ndarray  # (17, 2)
    angles: np.ndarray  # (17,) tangent angles, degrees
    widths: np.ndarray
    heights: np.ndarray
    curve: Curve
    neck_angle: float
    rotation: np.ndarray  # (17,) axial rotation in [-1, 1] (pedicle shift towards the convex side)


def sample_spine(rng: np.random.Generator) -> Spine:
    level = np.arange(17, dtype=np.float64)
    size = rng.uniform(0.85, 1.15)
    heights = np.interp(level, [0, 11, 16], [14.5, 22.5, 27.0]) * size * rng.uniform(0.95, 1.05, 17)
    widths = np.interp(level, [0, 3, 11, 16], [30.0, 27.0, 40.0, 50.0]) * size * rng.uniform(0.96, 1.04, 17)
    gaps = np.interp(np.arange(16), [0, 10, 15], [3.5, 6.0, 10.0]) * size * rng.uniform(0.8, 1.2, 16)
    curve = sample_curve(rng)
    centres, angles = centreline(heights=heights, gaps=gaps, angle_deg=curve.angle)
    angles = angles + rng.normal(0.0, 1.2, 17)
    wedge = rng.normal(0.0, 1.5, 17)
    corners = quad_corners(centres, angles, widths, heights, wedge=wedge)
    corners = corners + rng.normal(0.0, 0.25, corners.shape)
    # axial rotation grows with the lateral offset from the line joining T1 and L5 (apical vertebrae turn most)
    chord = centres[-1] - centres[0]
    normal = np.array([chord[1], -chord[0]]) / max(np.linalg.norm(chord), 1e-9)
    offset = (centres - centres[0]) @ normal
    rotation = np.clip(offset / 40.0, -1.0, 1.0)
    return Spine(corners_mm=corners, centres_mm=centres, angles=angles, widths=widths, heights=heights,
                 curve=curve, neck_angle=float(angles[0] + rng.normal(0, 4)), rotation=rotation)


@dataclass(frozen=True)
class Frame:
    """Millimetres -> final pixels (`scale` px/mm, `origin` = pixel of mm (0, 0)) and final -> working pixels."""

    scale: float
    origin: np.ndarray
    height: int
    width: int
    work_rows: int
    work_cols: int

    def px(self, mm: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(mm) * self.scale + self.origin, dtype=np.float64)

    def work(self, mm: np.ndarray) -> np.ndarray:
        """mm -> working canvas pixel coordinates (PIL's bilinear resize maps pixel centres this way)."""
        px = self.px(mm)
        return np.stack([(px[..., 0] + 0.5) * self.work_cols / self.width - 0.5,
                         (px[..., 1] + 0.5) * self.work_rows / self.height - 0.5], axis=-1)

    @property
    def work_per_mm(self) -> float:
        return self.scale * self.work_rows / self.height


def place(rng: np.random.Generator, spine: Spine, config: RadiographConfig, *, small: bool) -> Frame:
    height = int(rng.integers(*(SMALL_HEIGHT if small else config.height), endpoint=True))
    top, bottom = rng.uniform(*config.spine_top) * height, rng.uniform(*config.spine_bottom) * height
    ys = spine.corners_mm[..., 1]
    scale = (bottom - top) / (ys.max() - ys.min())
    xs = spine.corners_mm[..., 0] * scale
    width = int(round(height * rng.uniform(*config.aspect)))
    margin = 0.9 * spine.widths.max() * scale
    width = int(max(width, np.ceil(xs.max() - xs.min() + 2 * margin)))
    centre_x = width / 2.0 + rng.normal(0.0, 0.03 * width)
    centre_x = np.clip(centre_x, margin + (xs.max() - xs.min()) / 2, width - margin - (xs.max() - xs.min()) / 2)
    origin = np.array([centre_x - (xs.max() + xs.min()) / 2.0, top - ys.min() * scale])
    rows = min(config.working_rows, height)
    cols = max(8, int(round(width * rows / height)))
    return Frame(scale=scale, origin=origin, height=height, width=width, work_rows=rows, work_cols=cols)


def _bone(rng: np.random.Generator, spine: Spine, frame: Frame) -> np.ndarray:
    """Bone attenuation on the working canvas (before blur)."""
    canvas = np.zeros((frame.work_rows, frame.work_cols), dtype=np.float32)
    k = frame.work_per_mm
    theta = np.radians(spine.angles)
    down = np.stack([np.sin(theta), np.cos(theta)], axis=1)
    right = np.stack([np.cos(theta), -np.sin(theta)], axis=1)
    density = rng.uniform(0.8, 1.1)

    # ribs behind everything: posterior arcs leaving the transverse processes of T1-T12
    for v in range(12):
        length = np.interp(v, [0, 4, 9, 11], [70.0, 150.0, 150.0, 60.0]) * rng.uniform(0.9, 1.1)
        u = np.linspace(0.0, 1.0, 24)[:, None]
        for side in (-1.0, 1.0):
            start = spine.centres_mm[v] + side * right[v] * spine.widths[v] * 0.55
            path = (start + side * right[v] * (u * length) + down[v] * length * (-0.12 * u + 0.5 * u**2))
            value, half = 0.11 * density * rng.uniform(0.7, 1.2), k * spine.heights[v] * rng.uniform(0.22, 0.32)
            add_strip(canvas, frame.work(path), half, value)
            add_strip(canvas, frame.work(path), half * 0.6, -0.45 * value)  # thin cortex reads brighter
    # cervical spine above T1 and sacrum below L5, continuing the curve
    neck = np.radians(spine.neck_angle)
    up = -np.array([np.sin(neck), np.cos(neck)])
    base = spine.centres_mm[0] - down[0] * spine.heights[0] / 2
    for c in range(6):
        h, w = 12.0 - c * 0.3, 24.0 - c * 1.2
        centre = base + up * (4.0 + h / 2 + c * (h + 4.0))
        box = quad_corners(centre[None], np.array([spine.neck_angle]), np.array([w]), np.array([h]))[0]
        add_polygon(canvas, frame.work(box[[0, 1, 3, 2]]), 0.3 * density)
    sacrum_top = spine.centres_mm[-1] + down[-1] * (spine.heights[-1] / 2 + 9.0)
    w5 = spine.widths[-1]
    sacrum = np.array([sacrum_top - right[-1] * w5 * 0.6, sacrum_top + right[-1] * w5 * 0.6,
                       sacrum_top + down[-1] * 95.0])
    add_polygon(canvas, frame.work(sacrum), 0.32 * density)
    for k_foramen in range(4):  # sacral foramina: paired dark holes down the sacrum
        for side in (-1.0, 1.0):
            hole = sacrum_top + down[-1] * (18.0 + 17.0 * k_foramen) + side * right[-1] * w5 * (0.3 - 0.05 * k_foramen)
            add_ellipse(canvas, frame.work(hole), (k * 4.0, k * 3.5), -0.12 * density)
    tilt = float(np.degrees(np.arctan2(down[-1][0], down[-1][1])))
    for side in (-1.0, 1.0):  # iliac wings: fans with a dense crest, then the femoral heads below
        wing = sacrum_top + side * right[-1] * 92.0 + down[-1] * 5.0
        add_ellipse(canvas, frame.work(wing), (k * 72, k * 40), 0.1 * density, angle_deg=tilt - side * 35)
        add_ring(canvas, frame.work(wing), (k * 72, k * 40), 0.12 * density, inner=0.9, angle_deg=tilt - side * 35)
        add_ring(canvas, frame.work(sacrum_top + side * right[-1] * 95.0 + down[-1] * 150.0),
                 (k * 24, k * 24), 0.3 * density, inner=0.85)  # femoral head
    # shoulder girdle: clavicles, humeral heads and a skull, seen when the field of view is wide
    shoulder = spine.centres_mm[0] + up * 10.0
    for side in (-1.0, 1.0):
        lateral = np.array([side, 0.0])
        clavicle = shoulder + lateral * np.linspace(15, 150, 20)[:, None] + np.array([0.0, -1.0]) * \
            (25.0 * np.sin(np.linspace(0, np.pi, 20)))[:, None] * 0.4
        add_strip(canvas, frame.work(clavicle), k * 6.0, 0.25 * density)
        add_ellipse(canvas, frame.work(shoulder + lateral * 175.0 + np.array([0.0, 15.0])),
                    (k * 26, k * 28), 0.28 * density)
    skull_centre = base + up * 170.0
    add_ring(canvas, frame.work(skull_centre), (k * 75, k * 95), 0.35 * density, inner=0.9)
    add_strip(canvas, frame.work(skull_centre + np.stack([np.linspace(-50, 50, 16),
                                                           55 + 25 * np.cos(np.linspace(-1.3, 1.3, 16))], 1)),
              k * 6.0, 0.3 * density)

    # vertebrae T1-L5: waisted body, cortical rim, pedicle rings, spinous and transverse processes
    for v in range(17):
        tl, tr, bl, br = spine.corners_mm[v]
        waist = 0.05 * spine.widths[v]
        left_mid, right_mid = (tl + bl) / 2 + right[v] * waist, (tr + br) / 2 - right[v] * waist
        body = np.array([tl, tr, right_mid, br, bl, left_mid])
        add_polygon(canvas, frame.work(body), 0.42 * density)
        inner = spine.centres_mm[v] + (body - spine.centres_mm[v]) * 0.8
        add_polygon(canvas, frame.work(inner), -0.1 * density)
        w, h, rot = spine.widths[v], spine.heights[v], spine.rotation[v]
        for side in (-1.0, 1.0):
            pedicle = spine.centres_mm[v] + right[v] * w * (side * 0.3 + 0.12 * rot) - down[v] * h * 0.12
            add_ring(canvas, frame.work(pedicle), (k * w * 0.09, k * h * 0.2), 0.14 * density,
                     angle_deg=spine.angles[v])
            process_len = w * (0.28 if v < 12 else 0.45)
            tip = spine.centres_mm[v] + side * right[v] * (w / 2 + process_len) - down[v] * h * 0.05
            add_strip(canvas, frame.work(np.linspace(spine.centres_mm[v] + side * right[v] * w * 0.4, tip, 6)),
                      k * h * 0.12, 0.12 * density)
        spinous = spine.centres_mm[v] - right[v] * w * 0.1 * rot + down[v] * h * 0.3
        add_ellipse(canvas, frame.work(spinous), (k * w * 0.06, k * h * 0.35), 0.12 * density,
                    angle_deg=spine.angles[v])
    return canvas


def _soft_tissue(rng: np.random.Generator, spine: Spine, frame: Frame) -> np.ndarray:
    """Body outline, lungs and mediastinum on a coarse grid, resized to the working canvas (they are smooth)."""
    rows, cols = 96, max(8, int(round(96 * frame.work_cols / frame.work_rows)))
    to_coarse = np.array([cols / frame.work_cols, rows / frame.work_rows])
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    mid = (frame.work(spine.centres_mm.mean(axis=0)) + 0.5) * to_coarse - 0.5
    body_half = (frame.work_per_mm * 170.0 * rng.uniform(0.85, 1.15)) * to_coarse[0]
    body = np.clip(1.0 - ((xx - mid[0]) / body_half) ** 2, 0.0, 1.0) ** 0.5
    tissue = 0.22 * body + 0.05 * (yy / rows)
    thorax = (frame.work(spine.centres_mm[[0, 10]]) + 0.5) * to_coarse - 0.5
    lung_h = (thorax[1, 1] - thorax[0, 1]) * 0.55
    spine_half = frame.work_per_mm * spine.widths[5] * to_coarse[0]
    for side in (-1.0, 1.0):
        cx = thorax[:, 0].mean() + side * (spine_half + body_half * 0.45)
        cy = thorax[0, 1] + lung_h * 1.05
        lung = ((xx - cx) / (body_half * 0.42)) ** 2 + ((yy - cy) / lung_h) ** 2 < 1.0
        tissue -= 0.12 * rng.uniform(0.7, 1.2) * lung
    heart = ((xx - mid[0] - 0.3 * spine_half) / (spine_half * 2.6)) ** 2 + ((yy - thorax[1, 1] + lung_h * 0.4)
                                                                           / (lung_h * 0.5)) ** 2 < 1.0
    tissue += 0.05 * heart
    tissue = gaussian_filter(tissue, 2.0)
    return resize(tissue, rows=frame.work_rows, cols=frame.work_cols)


def _texture(rng: np.random.Generator, frame: Frame) -> np.ndarray:
    """Multiplicative trabecular-like mottle for bone: smooth noise around 1."""
    coarse = gaussian_filter(rng.standard_normal((frame.work_rows // 6 + 2, frame.work_cols // 6 + 2)), 0.8)
    return (1.0 + 0.5 * resize(coarse, rows=frame.work_rows, cols=frame.work_cols)).astype(np.float32)


def render(rng: np.random.Generator, spine: Spine, frame: Frame, config: RadiographConfig) -> np.ndarray:
    """The 8-bit radiograph (frame.height x frame.width)."""
    bone = _bone(rng, spine, frame) * _texture(rng, frame)
    work = gaussian_filter(bone, rng.uniform(0.9, 1.8)) + _soft_tissue(rng, spine, frame)
    work += rng.normal(0.0, rng.uniform(0.008, 0.03), work.shape).astype(np.float32)  # quantum mottle
    low, high = config.window
    low, high = low + rng.normal(0, 0.03), high + rng.normal(0, 0.04)
    gamma = rng.uniform(*config.gamma)
    # exposure at the working resolution (smooth there), then upsampling; only the film grain is added at full size
    grey = ((low + (high - low) * np.clip(work / 0.8, 0.0, 1.0) ** gamma) * 255.0 + 0.5).astype(np.float32)
    grain = rng.standard_normal((frame.height // 2 + 1, frame.width // 2 + 1), dtype=np.float32)
    grain *= rng.uniform(1.0, 4.0)
    full = resize(grey, rows=frame.height, cols=frame.width) + np.asarray(
        Image.fromarray(grain).resize((frame.width, frame.height), Image.Resampling.NEAREST))
    return np.asarray(np.clip(full, 0, 255, out=full), dtype=np.uint8)


@dataclass(frozen=True)
class AasceCase:
    image: np.ndarray
    landmarks: np.ndarray  # (68, 2) pixels, vertebra by vertebra TL, TR, BL, BR
    curve: Curve


def make_case(rng: np.random.Generator, *, domain: str = "train", small: bool = False) -> AasceCase:
    config = PRESETS[domain]
    spine = sample_spine(rng)
    frame = place(rng, spine, config, small=small)
    image = render(rng, spine, frame, config)
    return AasceCase(image=image, landmarks=frame.px(spine.corners_mm).reshape(68, 2), curve=spine.curve)


def landmark_columns() -> list[str]:
    return [f"x{i}" for i in range(1, 69)] + [f"y{i}" for i in range(1, 69)]


def generate(*, out: Path, cases: int, seed: int, domain: str, layout: str, small: bool, progress: bool,
             workers: int = 1) -> Path:
    from evaluators.cobb import cobb_angles

    if layout == "spineweb16":
        return write_spineweb16(out=out, cases=cases, seed=seed, domain=domain, small=small, progress=progress)

    def job(index: int) -> Job:
        def write(input_dir: Path, _gt_dir: Path) -> GeneratedCase:
            case = make_case(case_rng(seed, TASK_ID, index), domain=domain, small=small)
            cid = case_id(index)
            write_png(input_dir / "image.png", case.image)
            height, width = case.image.shape
            angles = [float(a) for a in cobb_angles(case.landmarks, height)]
            landmarks = [cid, height, width, *np.round(case.landmarks[:, 0], 3), *np.round(case.landmarks[:, 1], 3)]
            rows = {"landmarks": [landmarks], "angles": [[cid, *np.round(angles, 4)]]}
            return GeneratedCase(id=cid, group=None, preview=case.image, rows=rows)
        return case_id(index), None, write

    def finish(gt_dir: Path, done: list[GeneratedCase]) -> None:
        pd.DataFrame(table_rows(done, "angles"), columns=["case_id", "pt", "mt", "tl"]).to_csv(
            gt_dir / "angles.csv", index=False)
        columns = ["case_id", "image_height", "image_width", *landmark_columns()]
        pd.DataFrame(table_rows(done, "landmarks"), columns=columns).to_csv(gt_dir / "landmarks.csv", index=False)

    return run_cases(task_id=TASK_ID, out=out, seed=seed, domain=domain, jobs=(job(i) for i in range(cases)),
                     total=cases, progress=progress, finish=finish, workers=workers)


def write_spineweb16(*, out: Path, cases: int, seed: int, domain: str, small: bool, progress: bool) -> Path:
    """aasce-cobb cases in the SpineWeb dataset 16 layout (JPEG images, normalised landmarks, no headers)."""
    from evaluators.cobb import cobb_angles

    split = layouts.SPINEWEB_SPLITS[domain]
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
