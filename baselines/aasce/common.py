"""Pieces the AASCE methods share (with ``baselines.data`` for reading and preparing cases and
``baselines.nn.training`` for seeding, the device and the one optimisation loop): image batches, batch
augmentations, the automatic spine crops, vertebra-count forcing, polynomial landmark smoothing, and the prediction
record.

- ``image_batch(images, device)``: a list of (H, W) float arrays as an (N, 1, H, W) tensor.
- ``Framing`` / ``framing_from_cases(cases)``: how the training images frame the spine (margins above T1 and below L5
  as fractions of the spine's length, and the width/height ratio), measured on the training landmarks.
  ``Framing.crop_box(points, image_shape)`` turns the spine points a first pass found in a test image into the crop
  that frames it the same way. This automatic step replaces the manual cropping of test images (skull and pelvis
  removed by hand) that Seg4Reg and Khanal et al. describe.
- ``refine_crop(find_points, image, framing, *, rounds, start=None)``: the automatic crop repeated: find the spine
points on the
  whole image, crop, find them again on the crop (where the spine is seen at the scale the network was trained on),
  crop again, ``rounds`` times; returns the final box. One round is the plain two-pass crop.
  ``Framing.trim_mask(mask)``: a predicted spine mask cut to the T1-L5 length the training proportions (length /
  vertebra width) allow, removing what grew above T1 into anatomy the cropped training images never showed.
- ``force_count(corners, count=17)``: drop extra vertebrae from the bottom, or repeat the bottom one (Khanal Sect. 4).
- ``smooth_landmarks(landmarks, degree=6)``: replace each corner type's x by a degree-``degree`` polynomial in y
  fitted over the vertebrae (Khanal Sect. 4; one polynomial per corner type so left and right corners stay apart).
- ``largest_component(mask)``: the largest connected component of a binary mask.
- ``crop_resize(image, box, size)``: resample a box of the image to a fixed size (for per-vertebra networks).
- ``angle_record(angles)``: the in-memory prediction ``{"angles": [pt, mt, tl]}`` (finite, non-negative).
- ``shift_batch``, ``random_affine``, ``intensity_augment``: augmentations of whole batches of images and target maps
  together (methods 5-9 apply them inside ``baselines.nn.training.fit``).
- ``spine_box``, ``crop_to_landmarks`` (training-time crop) and ``crop_to_mask`` (test-time crop from a predicted
  spine map): the spine-region crops of methods 5-9 on ``baselines.data.Case``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from baselines.data import Case


def image_batch(images, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.stack([np.asarray(i, dtype=np.float32) for i in images])[:, None]).to(device)


@dataclass(frozen=True)
class Framing:
    top: float
    bottom: float
    aspect: float
    length_ratio: float | None = None  # T1-L5 length / mean vertebra width on the training landmarks

    def trim_mask(self, mask: np.ndarray, *, tolerance: float = 1.1) -> np.ndarray:
        """A predicted spine mask cut to the length the training proportions allow. The T1-L5 length is about
        ``length_ratio`` times the vertebral width (the median width of the mask's rows); a mask that is more than
        ``tolerance`` times that long has grown into structures the training images did not show above T1 (the
        cervical spine, the skull), so only the bottom ``length_ratio`` x width rows are kept. The bottom end is the
        one the training images show (the sacrum below L5 is labelled background there)."""
        mask = np.asarray(mask, dtype=bool)
        rows = np.flatnonzero(mask.any(axis=1))
        if not self.length_ratio or len(rows) < 2:
            return mask
        expected = self.length_ratio * float(np.median(mask[rows].sum(axis=1)))
        if rows[-1] - rows[0] + 1 <= tolerance * expected:
            return mask
        out = mask.copy()
        out[: max(0, int(round(rows[-1] + 1 - expected)))] = False
        return out

    def crop_box(self, points, image_shape: tuple[int, int], *, min_extent: float = 0.2) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) framing the spine points like the training images; the whole image when the points
        span less than ``min_extent`` of its height (nothing trustworthy was found)."""
        height, width = image_shape[:2]
        points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        whole = (0, 0, width, height)
        if len(points) < 2:
            return whole
        top, bottom = points[:, 1].min(), points[:, 1].max()
        length = bottom - top
        if length < min_extent * height:
            return whole
        y0, y1 = top - self.top * length, bottom + self.bottom * length
        crop_width = self.aspect * (y1 - y0)
        centre = float(np.median(points[:, 0]))
        x0, x1 = centre - crop_width / 2, centre + crop_width / 2
        box = (
            max(0, int(np.floor(x0))),
            max(0, int(np.floor(y0))),
            min(width, int(np.ceil(x1))),
            min(height, int(np.ceil(y1))),
        )
        return box if box[2] - box[0] >= 8 and box[3] - box[1] >= 8 else whole

    def to_dict(self) -> dict:
        return {"top": self.top, "bottom": self.bottom, "aspect": self.aspect, "length_ratio": self.length_ratio}


def refine_crop(
    find_points, image: np.ndarray, framing: Framing, *, rounds: int = 1, start: tuple[int, int, int, int] | None = None
) -> tuple[int, int, int, int]:
    """The crop box after ``rounds`` rounds of find-points-then-frame, beginning from ``start`` (default: the whole
    image). ``find_points(image)`` returns spine points (N, 2) in that image's pixels. A round whose crop finds too
    few points keeps the previous box."""
    height, width = image.shape[:2]
    box = tuple(int(v) for v in start) if start is not None else (0, 0, width, height)
    for _ in range(max(1, rounds)):
        points = np.asarray(find_points(crop(image, box)), dtype=np.float64).reshape(-1, 2)
        if len(points) < 2:
            break
        new = framing.crop_box(points + [box[0], box[1]], image.shape)
        if new == (0, 0, width, height) and box != new:
            break  # the points on the crop span too little of it: keep the previous crop
        box = new
    return box


def framing_windows(
    image_shape: tuple[int, int],
    framing: Framing,
    *,
    heights=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    step: float = 0.05,
    columns: int = 5,
) -> list[tuple[int, int, int, int]]:
    """Candidate crops (x0, y0, x1, y1) with the training images' width/height ratio: for each height (a fraction of
    the image height), windows every ``step`` of the image height from top to bottom, at ``columns`` horizontal
    positions spread evenly across the image (one, centred, when the window is as wide as the image)."""
    height, width = image_shape[:2]
    windows = []
    for fraction in heights:
        window_height = min(float(fraction), 1.0) * height
        window_width = min(float(width), framing.aspect * window_height)
        rows = max(1, int(round((height - window_height) / (step * height))) + 1)
        cols = max(1, columns) if window_width < width else 1
        for y0 in np.linspace(0.0, height - window_height, rows):
            for x0 in np.linspace(0.0, width - window_width, cols) if cols > 1 else [(width - window_width) / 2]:
                windows.append(
                    (int(round(x0)), int(round(y0)), int(round(x0 + window_width)), int(round(y0 + window_height)))
                )
    return list(dict.fromkeys(windows))  # rounding can make two candidates equal: keep the first


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest connected component of a binary mask (the mask itself, as bool, when it has none)."""
    labels, count = ndimage.label(mask)
    if count == 0:
        return np.asarray(mask, dtype=bool)
    sizes = ndimage.sum(mask, labels, index=range(1, count + 1))
    return labels == (int(np.argmax(sizes)) + 1)


def framing_from_cases(cases) -> Framing:
    tops, bottoms, aspects, ratios = [], [], [], []
    for case in cases:
        height, width = case.image.shape[:2]
        top, bottom = case.landmarks[:, 1].min(), case.landmarks[:, 1].max()
        length = max(bottom - top, 1.0)
        tops.append(top / length)
        bottoms.append((height - 1 - bottom) / length)
        aspects.append(width / height)
        corners = np.asarray(case.landmarks, dtype=np.float64).reshape(-1, 4, 2)
        widths = np.linalg.norm(corners[:, [1, 3]] - corners[:, [0, 2]], axis=-1).mean()
        ratios.append(length / max(widths, 1e-6))
    return Framing(
        float(np.median(tops)), float(np.median(bottoms)), float(np.median(aspects)), float(np.median(ratios))
    )


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def force_count(corners: np.ndarray, count: int = 17) -> np.ndarray:
    """(V, 4, 2) vertebrae sorted top to bottom -> exactly ``count`` of them."""
    corners = np.asarray(corners, dtype=np.float64)
    if len(corners) == 0:
        raise ValueError("force_count: no vertebrae to work with")
    if len(corners) >= count:
        return corners[:count]
    return np.concatenate([corners, np.repeat(corners[-1:], count - len(corners), axis=0)])


def smooth_landmarks(landmarks: np.ndarray, degree: int = 6) -> np.ndarray:
    corners = np.asarray(landmarks, dtype=np.float64).reshape(-1, 4, 2).copy()
    for corner in range(4):
        ys, xs = corners[:, corner, 1], corners[:, corner, 0]
        # repeated vertebrae (``force_count``) add no information: the degree is capped by the distinct heights
        usable = min(degree, len(np.unique(np.round(ys, 6))) - 1)
        if usable < 1:
            continue
        centre, spread = ys.mean(), max(ys.std(), 1e-6)  # centred and scaled for a well-conditioned fit
        coefficients = np.polyfit((ys - centre) / spread, xs, usable)
        corners[:, corner, 0] = np.polyval(coefficients, (ys - centre) / spread)
    return corners.reshape(-1, 2)


def angle_record(angles) -> dict:
    values = np.nan_to_num(np.asarray(angles, dtype=np.float64).reshape(3), nan=0.0, posinf=0.0, neginf=0.0)
    return {"angles": [float(v) for v in np.clip(values, 0.0, 180.0)]}


def crop_resize(image: np.ndarray, box, size: tuple[int, int]) -> np.ndarray:
    """Resample the axis-aligned ``box`` (x0, y0, x1, y1; pixel-centre coordinates, may leave the image) to
    ``size = (H, W)``; output pixel (c, r) samples x0 + (c + 0.5)/W · (x1 - x0), so ``converters.to_box_frame``
    gives the matching [0, 1] coordinates. Outside the image is 0."""
    x0, y0, x1, y1 = (float(v) for v in box)
    out_h, out_w = size
    step_x, step_y = (x1 - x0) / out_w, (y1 - y0) / out_h
    matrix = np.array([[step_x, 0, x0 + 0.5 * step_x], [0, step_y, y0 + 0.5 * step_y], [0, 0, 1]])
    return warp(image, AffineTransform(matrix=matrix), output_shape=(out_h, out_w), order=1, cval=0.0).astype(
        np.float32
    )


def shift_batch(batch: dict[str, np.ndarray], rng: np.random.Generator, *, fraction: float) -> dict[str, np.ndarray]:
    """Translate every image-shaped array of a batch (trailing axes (H, W)) by one random integer shift per case,
    zero filled; arrays whose last two axes differ from the first array's are left alone."""
    first = next(iter(batch.values()))
    height, width = first.shape[-2:]
    out = {
        key: np.zeros_like(value) if value.shape[-2:] == (height, width) and value.ndim >= 3 else value
        for key, value in batch.items()
    }
    for index in range(len(first)):
        dy = int(rng.integers(-int(fraction * height), int(fraction * height) + 1))
        dx = int(rng.integers(-int(fraction * width), int(fraction * width) + 1))
        src = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
        dst = (slice(max(0, dy), height - max(0, -dy)), slice(max(0, dx), width - max(0, -dx)))
        for key, value in batch.items():
            if out[key] is not value:
                out[key][index][(..., *dst)] = value[index][(..., *src)]
    return out


def random_affine(
    maps: torch.Tensor, rng: np.random.Generator, *, degrees: float, translate: float, flip: bool
) -> torch.Tensor:
    """Apply one random rotation (uniform in +-`degrees`), translation (+-`translate` of the size) and, when `flip`,
    a horizontal flip with probability 1/2 per case to every channel of (N, C, H, W) `maps` (bilinear, zero fill)."""
    count = maps.shape[0]
    angle = np.radians(rng.uniform(-degrees, degrees, count))
    sign = np.where(rng.random(count) < 0.5, -1.0, 1.0) if flip else np.ones(count)
    shift = rng.uniform(-translate, translate, (count, 2)) * 2
    height, width = maps.shape[-2:]
    aspect = height / width
    theta = np.zeros((count, 2, 3))
    # rotation in pixel space, expressed in the normalised [-1, 1] coordinates affine_grid uses
    theta[:, 0, 0] = np.cos(angle) * sign
    theta[:, 0, 1] = -np.sin(angle) * aspect
    theta[:, 1, 0] = np.sin(angle) / aspect * sign
    theta[:, 1, 1] = np.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(
        torch.as_tensor(theta, dtype=maps.dtype, device=maps.device), list(maps.shape), align_corners=False
    )
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def intensity_augment(images: torch.Tensor, rng: np.random.Generator, *, kind: str) -> torch.Tensor:
    """'gaussian': add noise of std up to 0.05; 'bc': random brightness (+-0.1) and contrast (x0.8-1.2) per case;
    'none': unchanged."""
    count = images.shape[0]
    shape = (count,) + (1,) * (images.ndim - 1)
    if kind == "gaussian":
        std = torch.as_tensor(rng.uniform(0, 0.05, count), dtype=images.dtype, device=images.device).view(shape)
        return images + std * torch.randn_like(images)
    if kind == "bc":
        gain = torch.as_tensor(rng.uniform(0.8, 1.2, count), dtype=images.dtype, device=images.device).view(shape)
        bias = torch.as_tensor(rng.uniform(-0.1, 0.1, count), dtype=images.dtype, device=images.device).view(shape)
        mean = images.mean(dim=tuple(range(1, images.ndim)), keepdim=True)
        return (images - mean) * gain + mean + bias
    if kind == "none":
        return images
    raise ValueError(f"intensity augmentation must be 'gaussian', 'bc' or 'none', got {kind!r}")


def spine_box(
    top: float, bottom: float, centre_x: float, *, margin: float, aspect: float
) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a spine region: rows `top`..`bottom` enlarged by `margin` of their span above and below,
    `aspect` times taller than wide, centred on column `centre_x`."""
    pad = margin * (bottom - top)
    top, bottom = top - pad, bottom + pad
    half_width = (bottom - top) / aspect / 2
    return centre_x - half_width, top, centre_x + half_width, bottom


def crop_to_landmarks(case: Case, *, margin: float, size: tuple[int, int], aspect: float | None = None) -> Case:
    """Training-time crop: the landmark span with `margin`, `aspect` times taller than wide (default: shaped like
    the network input `size` (H, W)), letterboxed to `size`."""
    return crop_to_points(case, case.landmarks, margin=margin, size=size, aspect=aspect)


def crop_to_points(
    case: Case, points: np.ndarray, *, margin: float, size: tuple[int, int], aspect: float | None = None
) -> Case:
    """The rows spanned by `points` ((N, 2) resized pixels of `case`) around their mean column, framed by
    `spine_box` and letterboxed to `size` (`aspect` as in `crop_to_landmarks`)."""
    box = spine_box(
        points[:, 1].min(),
        points[:, 1].max(),
        points[:, 0].mean(),
        margin=margin,
        aspect=size[0] / size[1] if aspect is None else aspect,
    )
    return case.cropped(box, size)


def crop_to_mask(case: Case, mask: np.ndarray, *, margin: float, size: tuple[int, int]) -> Case:
    """Test-time automatic crop: the rows and mean column of `mask` > 0.5 (a predicted spine map on this case's
    grid), with `margin`, shaped like `size`; the case is returned unchanged when the mask is empty."""
    rows, cols = np.nonzero(mask > 0.5)
    if len(rows) < 2:
        return case
    box = spine_box(rows.min(), rows.max(), cols.mean(), margin=margin, aspect=size[0] / size[1])
    return case.cropped(box, size)
