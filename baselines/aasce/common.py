"""Pieces AASCE methods 1-4 share: the training loop, image batches, the automatic spine crop, vertebra-count
forcing, polynomial landmark smoothing, and the prediction record.

- ``optimise(loss_fn, parameters, *, steps, lr, device, progress, desc, optimizer="adam", weight_decay=0,
  momentum=0.9, cosine=False) -> list[float]``: ``steps`` optimiser steps on ``loss_fn(step)`` (under mixed precision
  on CUDA), returning every step's loss.
- ``image_batch(images, device)``: a list of (H, W) float arrays as an (N, 1, H, W) tensor.
- ``Framing`` / ``framing_from_cases(cases)``: how the training images frame the spine (margins above T1 and below L5
  as fractions of the spine's length, and the width/height ratio), measured on the training landmarks.
  ``Framing.crop_box(points, image_shape)`` turns the spine points a first pass found in a test image into the crop
  that frames it the same way. This automatic step replaces the manual cropping of test images (skull and pelvis
  removed by hand) that Seg4Reg and Khanal et al. describe.
- ``refine_crop(find_points, image, framing, *, rounds, start=None)``: the automatic crop repeated: find the spine points on the
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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from skimage.transform import AffineTransform, warp

from baselines.nn.training import GradScalerStep, autocast, progress as progress_bar


def optimise(
    loss_fn: Callable[[int], torch.Tensor],
    parameters,
    *,
    steps: int,
    lr: float,
    device: torch.device,
    progress: bool,
    desc: str,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    cosine: bool = False,
) -> list[float]:
    parameters = [p for p in parameters if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1)) if cosine else None
    stepper = GradScalerStep(device)
    losses = []
    for step in progress_bar(range(steps), enabled=progress, desc=desc):
        with autocast(device):
            loss = loss_fn(step)
        stepper.step(loss, opt)
        if schedule is not None:
            schedule.step()
        losses.append(float(loss.detach()))
    return losses


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
        box = (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))), min(width, int(np.ceil(x1))), min(height, int(np.ceil(y1))))
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
    image_shape: tuple[int, int], framing: Framing, *, heights=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0), step: float = 0.05,
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
                windows.append((int(round(x0)), int(round(y0)), int(round(x0 + window_width)), int(round(y0 + window_height))))
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
    return Framing(float(np.median(tops)), float(np.median(bottoms)), float(np.median(aspects)), float(np.median(ratios)))


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
    return warp(image, AffineTransform(matrix=matrix), output_shape=(out_h, out_w), order=1, cval=0.0).astype(np.float32)
