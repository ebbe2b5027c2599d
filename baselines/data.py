"""The AASCE data pipeline shared by the Cobb-angle baselines.

Reading (docs/formats.md, task ``aasce-cobb``):
- ``read_cases(data_dir, *, ground_truth)`` -> ``list[AasceCase]`` in manifest order. ``ground_truth=False`` reads
  only ``dataset.json`` and ``inputs/<case>/image.png`` (what every ``predict`` uses); ``True`` also reads
  ``ground_truth/landmarks.csv`` (68 points per case) and ``ground_truth/angles.csv`` (PT, MT, TL).
  Problems raise ``AasceDataError`` naming the file, row and case.
- ``AasceCase``: ``id``, ``image`` (uint8, H×W), ``landmarks`` ((68, 2) pixels or None), ``angles`` ((3,) or None).

Geometry:
- ``letterbox(image, size) -> (resized float32, Letterbox)``: aspect-preserving resize so the image fits
  ``size = (H, W)``, centred and zero-padded. ``Letterbox.to_resized(points)`` / ``to_original(points)`` map (x, y)
  pixel coordinates (origin at the top-left pixel centre) both ways; landmarks predicted on the resized grid are
  mapped back to the original pixels before computing angles.

Prepared cases (one form for every AASCE method):
- ``prepare(cases, *, size, enhancement="none", clip_limit=0.01) -> list[Case]`` and
  ``load_cases(data_dir, *, size, ground_truth, enhancement="none")`` (read + prepare): each image enhanced at its
  original resolution and letterboxed to ``size``, landmarks mapped alike.
- ``Case``: ``id``, ``image``, ``box`` (the ``Letterbox``), ``raw`` (the original image), ``landmarks`` (resized
  pixels), ``angles``; ``to_original``/``to_resized`` map points, ``cropped(box, size)`` letterboxes a region of the
  original image (the automatic cropping steps), ``original_height``.

Intensity:
- ``enhance(image, method)`` -> float32 in [0, 1]: ``"none"`` (divide by the image maximum), ``"hist"``
  (global histogram equalisation, Seg4Reg Sect. 2.1), ``"clahe"`` (contrast-limited adaptive histogram equalisation,
  iFLYTEK Sect. 3.1; ``clip_limit``), via ``skimage.exposure``.

Augmentation (``Augmentation`` dataclass; ``augment(image, landmarks, *, config, rng)``): random rotation
(degrees, Seg4Reg ±45°), isotropic rescaling (Seg4Reg 0.85–1.25), translation (fraction of the size), horizontal and
vertical flips (Khanal, p = 0.5; landmarks are re-ordered so each corner keeps its meaning: a horizontal flip swaps
left and right corners, a vertical flip reverses the vertebra order and swaps top and bottom), additive Gaussian noise
(Khanal σ = 0.005) and brightness/contrast jitter (Dubost et al.). All geometric parts are one affine warp about the
image centre applied identically to the image, to ``extra`` masks (nearest neighbour) and to the landmarks.
``angles_from_landmarks(landmarks, image_height)`` recomputes the official angles (``evaluators.cobb``) — needed
after a vertical flip, which swaps the proximal and lumbar curves.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError
from skimage import exposure, transform

from evaluators.cobb import cobb_angles
from evaluators.layout import GROUND_TRUTH, LayoutError, case_input_dir, read_manifest

TASK = "aasce-cobb"
N_LANDMARKS = 68
ANGLE_NAMES = ("pt", "mt", "tl")
ENHANCEMENTS = ("none", "hist", "clahe")


class AasceDataError(ValueError):
    """An AASCE dataset folder is malformed; the message names the file, row and case."""


@dataclass
class AasceCase:
    id: str
    image: np.ndarray
    landmarks: np.ndarray | None = None
    angles: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.image.shape[:2]


def read_image(path: Path) -> np.ndarray:
    if not path.is_file():
        raise AasceDataError(f"{path}: missing input image (expected inputs/<case_id>/image.png)")
    try:
        with Image.open(path) as handle:
            return np.asarray(handle.convert("L"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise AasceDataError(f"{path}: not a readable image ({error})") from None


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise AasceDataError(f"{path}: missing ground-truth file")
    frame = pd.read_csv(path, dtype={"case_id": str})
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise AasceDataError(f"{path}: missing columns {', '.join(missing)}")
    values = frame[columns[1:]].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.to_numpy().any():
        row, column = np.argwhere(bad.to_numpy())[0]
        raise AasceDataError(
            f"{path}: row {row + 2} (case {frame['case_id'].iloc[row]!r}): column {columns[1 + column]!r} "
            "is not a finite number"
        )
    values.insert(0, "case_id", frame["case_id"])
    if values["case_id"].duplicated().any():
        case = values["case_id"][values["case_id"].duplicated()].iloc[0]
        raise AasceDataError(f"{path}: duplicate rows for case {case!r}")
    return values.set_index("case_id")


def read_landmarks(gt_dir: Path) -> dict[str, np.ndarray]:
    columns = ["case_id", *[f"x{i}" for i in range(1, N_LANDMARKS + 1)], *[f"y{i}" for i in range(1, N_LANDMARKS + 1)]]
    table = _read_table(gt_dir / "landmarks.csv", columns)
    xs, ys = table[columns[1 : N_LANDMARKS + 1]].to_numpy(), table[columns[N_LANDMARKS + 1 :]].to_numpy()
    return {case_id: np.stack([x, y], axis=1) for case_id, x, y in zip(table.index, xs, ys)}


def read_angles(gt_dir: Path) -> dict[str, np.ndarray]:
    table = _read_table(gt_dir / "angles.csv", ["case_id", *ANGLE_NAMES])
    return {case_id: row.astype(np.float64) for case_id, row in zip(table.index, table.to_numpy())}


def read_cases(data_dir, *, ground_truth: bool) -> list[AasceCase]:
    data_dir = Path(data_dir)
    try:
        manifest = read_manifest(data_dir)
    except LayoutError as error:
        raise AasceDataError(str(error)) from None
    if manifest.task != TASK:
        raise AasceDataError(f"{data_dir / 'dataset.json'}: task is {manifest.task!r}, expected {TASK!r}")
    cases = [
        AasceCase(case_id, read_image(case_input_dir(data_dir, case_id) / "image.png")) for case_id in manifest.case_ids
    ]
    if not ground_truth:
        return cases
    gt_dir = data_dir / GROUND_TRUTH
    landmarks, angles = read_landmarks(gt_dir), read_angles(gt_dir)
    for case in cases:
        for name, table in (("landmarks.csv", landmarks), ("angles.csv", angles)):
            if case.id not in table:
                raise AasceDataError(f"{gt_dir / name}: no row for case {case.id!r}")
        case.landmarks, case.angles = landmarks[case.id], angles[case.id]
    return cases


@dataclass(frozen=True)
class Letterbox:
    """resized = original · scale + offset, per axis (x, y), in pixel-centre coordinates."""

    scale: tuple[float, float]
    offset: tuple[float, float]
    size: tuple[int, int]
    original_shape: tuple[int, int]

    def to_resized(self, points) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) * np.asarray(self.scale) + np.asarray(self.offset)

    def to_original(self, points) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.offset)) / np.asarray(self.scale)


def letterbox(image: np.ndarray, size: tuple[int, int], *, order: int = 1) -> tuple[np.ndarray, Letterbox]:
    height, width = image.shape[:2]
    target_h, target_w = int(size[0]), int(size[1])
    scale = min(target_h / height, target_w / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = transform.resize(
        image.astype(np.float32),
        (new_h, new_w),
        order=order,
        anti_aliasing=order > 0 and scale < 1,
        preserve_range=True,
    ).astype(np.float32)
    top, left = (target_h - new_h) // 2, (target_w - new_w) // 2
    out = np.zeros((target_h, target_w), dtype=np.float32)
    out[top : top + new_h, left : left + new_w] = resized
    # skimage maps pixel centres as resized = (original + 0.5) · (new / old) - 0.5 per axis; the two ratios differ
    # only by the rounding of the new size.
    scale_x, scale_y = new_w / width, new_h / height
    return out, Letterbox(
        scale=(scale_x, scale_y),
        offset=(left + 0.5 * scale_x - 0.5, top + 0.5 * scale_y - 0.5),
        size=(target_h, target_w),
        original_shape=(height, width),
    )


def enhance(image: np.ndarray, method: str = "none", *, clip_limit: float = 0.01) -> np.ndarray:
    if method not in ENHANCEMENTS:
        raise ValueError(f"enhancement must be one of {', '.join(ENHANCEMENTS)}, got {method!r}")
    image = np.asarray(image, dtype=np.float64)
    scaled = image / max(float(image.max()), 1e-8)
    if method == "hist":
        return exposure.equalize_hist(scaled).astype(np.float32)
    if method == "clahe":
        return exposure.equalize_adapthist(scaled, clip_limit=clip_limit).astype(np.float32)
    return scaled.astype(np.float32)


@dataclass(frozen=True)
class Augmentation:
    rotation_degrees: float = 0.0
    scale_range: tuple[float, float] = (1.0, 1.0)
    translate_fraction: float = 0.0
    flip_horizontal: float = 0.0
    flip_vertical: float = 0.0
    noise_sigma: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0


_HORIZONTAL_CORNERS = [1, 0, 3, 2]
_VERTICAL_CORNERS = [2, 3, 0, 1]


def _reorder_after_flip(landmarks: np.ndarray, *, horizontal: bool, vertical: bool) -> np.ndarray:
    corners = landmarks.reshape(-1, 4, 2)
    if horizontal:
        corners = corners[:, _HORIZONTAL_CORNERS]
    if vertical:
        corners = corners[::-1, _VERTICAL_CORNERS]
    return corners.reshape(-1, 2)


def augment(
    image: np.ndarray,
    landmarks: np.ndarray | None,
    *,
    config: Augmentation,
    rng: np.random.Generator,
    extra: tuple[np.ndarray, ...] = (),
) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, ...]]:
    """Apply one random draw of ``config`` to a float image in [0, 1], its landmarks and ``extra`` label maps."""
    height, width = image.shape[:2]
    flip_h = rng.random() < config.flip_horizontal
    flip_v = rng.random() < config.flip_vertical
    angle = np.deg2rad(rng.uniform(-config.rotation_degrees, config.rotation_degrees))
    zoom = rng.uniform(*config.scale_range)
    shift = rng.uniform(-config.translate_fraction, config.translate_fraction, size=2) * (width, height)
    centre = np.array([(width - 1) / 2.0, (height - 1) / 2.0])
    flip = np.diag([-1.0 if flip_h else 1.0, -1.0 if flip_v else 1.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = zoom * rotation @ flip
    matrix = np.eye(3)
    matrix[:2, :2] = linear
    matrix[:2, 2] = centre + shift - linear @ centre
    warp = transform.AffineTransform(matrix=matrix)
    out = transform.warp(image, warp.inverse, order=1, mode="constant", cval=0.0, preserve_range=True).astype(
        np.float32
    )
    warped_extra = tuple(
        transform.warp(mask, warp.inverse, order=0, mode="constant", cval=0, preserve_range=True).astype(mask.dtype)
        for mask in extra
    )
    if config.contrast or config.brightness:
        gain = 1.0 + rng.uniform(-config.contrast, config.contrast)
        out = out * gain + rng.uniform(-config.brightness, config.brightness)
    if config.noise_sigma:
        out = out + rng.normal(0.0, config.noise_sigma, size=out.shape).astype(np.float32)
    out = np.clip(out, 0.0, 1.0).astype(np.float32)
    if landmarks is None:
        return out, None, warped_extra
    moved = warp(np.asarray(landmarks, dtype=np.float64))
    return out, _reorder_after_flip(moved, horizontal=flip_h, vertical=flip_v), warped_extra


def angles_from_landmarks(landmarks, image_height: float) -> np.ndarray:
    return cobb_angles(np.asarray(landmarks, dtype=np.float64), float(image_height))


@dataclass
class Case:
    """A case prepared for a network (every AASCE method uses this one form): ``image`` float32 (H, W) in [0, 1],
    enhanced at the original resolution and letterboxed; ``landmarks`` on the resized grid."""

    id: str
    image: np.ndarray  # (H, W) float32 in [0, 1], letterboxed to the requested size
    box: Letterbox  # original crop pixels <-> resized pixels
    raw: np.ndarray  # the original uint8 image
    enhancement: str = "none"
    clip_limit: float = 0.01
    origin: tuple[float, float] = (0.0, 0.0)  # (x, y) of the crop's top-left pixel in the original image
    landmarks: np.ndarray | None = None  # (68, 2) in resized pixels
    angles: np.ndarray | None = None  # (3,) degrees

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from resized pixels back to the original image's pixels."""
        return self.box.to_original(points) + np.asarray(self.origin)

    def to_resized(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from original pixels to resized pixels (inverse of `to_original`)."""
        return self.box.to_resized(np.asarray(points, dtype=np.float64) - np.asarray(self.origin))

    def cropped(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> Case:
        """A new case letterboxing the region `box` = (x0, y0, x1, y1) (resized pixels of this case, clipped to the
        original image) to `size`; landmarks follow, angles are kept."""
        (x0, y0), (x1, y1) = self.to_original(np.array([box[:2], box[2:]]))
        height, width = self.raw.shape
        x0, y0 = int(np.clip(np.floor(x0), 0, width - 1)), int(np.clip(np.floor(y0), 0, height - 1))
        x1, y1 = int(np.clip(np.ceil(x1), x0 + 1, width)), int(np.clip(np.ceil(y1), y0 + 1, height))
        image, frame = letterbox(enhance(self.raw[y0:y1, x0:x1], self.enhancement, clip_limit=self.clip_limit), size)
        case = Case(
            id=self.id,
            image=image,
            box=frame,
            raw=self.raw,
            enhancement=self.enhancement,
            clip_limit=self.clip_limit,
            origin=(float(x0), float(y0)),
            angles=self.angles,
        )
        if self.landmarks is not None:
            case.landmarks = case.to_resized(self.to_original(self.landmarks))
        return case

    @property
    def original_height(self) -> int:
        return int(self.raw.shape[0])


def prepare(
    cases: list[AasceCase], *, size: tuple[int, int], enhancement: str = "none", clip_limit: float = 0.01
) -> list[Case]:
    """Enhance each image at its original resolution, then letterbox it to ``size`` (landmarks mapped alike)."""
    prepared = []
    for case in cases:
        image, box = letterbox(enhance(case.image, enhancement, clip_limit=clip_limit), size)
        landmarks = box.to_resized(case.landmarks) if case.landmarks is not None else None
        prepared.append(
            Case(
                id=case.id,
                image=image,
                box=box,
                raw=case.image,
                enhancement=enhancement,
                clip_limit=clip_limit,
                landmarks=landmarks,
                angles=case.angles,
            )
        )
    return prepared


def load_cases(data_dir, *, size: tuple[int, int], ground_truth: bool, enhancement: str = "none") -> list[Case]:
    """``read_cases`` then ``prepare``: the dataset folder's cases ready for a network of input ``size``."""
    return prepare(read_cases(data_dir, ground_truth=ground_truth), size=size, enhancement=enhancement)
