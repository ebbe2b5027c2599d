"""Landmark ↔ mask / box / heatmap converters for AASCE annotations (numpy in, numpy out).

AASCE landmarks are ``(4·V, 2)`` pixel coordinates (x right, y down), four corners per vertebra in the order
top-left, top-right, bottom-left, bottom-right, vertebrae top to bottom (V = 17, T1–L5).

- ``vertebra_corners(landmarks) -> (V, 4, 2)`` and ``vertebra_centres(landmarks) -> (V, 2)``.
- ``landmarks_to_boxes(landmarks, *, widen=(0, 0), image_shape=None) -> (V, 4)`` ``[x0, y0, x1, y1]`` around each
  vertebra's corners, widened symmetrically by ``widen = (extra width, extra height)`` pixels (Khanal: 50, 10)
  and clipped to ``image_shape = (H, W)`` when given.
- ``landmarks_to_mask(landmarks, shape, *, gap_class=False) -> uint8 (H, W)``: each vertebra's quadrilateral is 1;
  with ``gap_class`` the space between consecutive vertebrae (bottom corners of one, top corners of the next) is 2
  (Seg4Reg's "gap between bones" class). ``mask > 0`` is then the whole spine column.
- ``mask_to_landmarks(mask, *, label=1, min_pixels=4) -> (4·V, 2)``: the inverse — connected components of
  ``label`` sorted top to bottom, corners the component's extreme pixels along the diagonals (−x−y, +x−y, −x+y, +x+y).
- ``landmarks_to_heatmaps(points, shape, *, sigma) -> float32 (K, H, W)``: one unnormalised Gaussian (peak 1) per
  point; ``heatmaps_to_landmarks(heatmaps, *, radius=2) -> (K, 2)``: argmax refined by the intensity-weighted centroid
  of the ``(2·radius+1)²`` window around it.
- ``to_box_frame(points, box)`` / ``from_box_frame(normalised, box)``: map pixels to the box's [0, 1]² frame and back.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage
from skimage.draw import polygon as fill_polygon

from baselines.nn.heatmaps import gaussian_maps

CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")


def vertebra_corners(landmarks) -> np.ndarray:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] % 4:
        raise ValueError(f"landmarks must have shape (4·V, 2), got {points.shape}")
    return points.reshape(-1, 4, 2)


def vertebra_centres(landmarks) -> np.ndarray:
    return vertebra_corners(landmarks).mean(axis=1)


def landmarks_to_boxes(landmarks, *, widen: tuple[float, float] = (0.0, 0.0), image_shape=None) -> np.ndarray:
    corners = vertebra_corners(landmarks)
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
    boxes += np.array([-widen[0], -widen[1], widen[0], widen[1]]) / 2.0
    if image_shape is not None:
        height, width = image_shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
    return boxes


def _fill(mask: np.ndarray, quad: np.ndarray, value: int) -> None:
    rows, cols = fill_polygon(quad[:, 1], quad[:, 0], shape=mask.shape)
    mask[rows, cols] = value


def landmarks_to_mask(landmarks, shape: tuple[int, int], *, gap_class: bool = False) -> np.ndarray:
    corners = vertebra_corners(landmarks)
    mask = np.zeros(shape[:2], dtype=np.uint8)
    if gap_class:
        for upper, lower in zip(corners[:-1], corners[1:]):
            # polygon order: upper's bottom-left, bottom-right, lower's top-right, top-left
            _fill(mask, np.stack([upper[2], upper[3], lower[1], lower[0]]), 2)
    for quad in corners:
        _fill(mask, quad[[0, 1, 3, 2]], 1)
    return mask


def mask_to_landmarks(mask, *, label: int = 1, min_pixels: int = 4) -> np.ndarray:
    components, count = ndimage.label(np.asarray(mask) == label)
    vertebrae = []
    for index in range(1, count + 1):
        rows, cols = np.nonzero(components == index)
        if rows.size < min_pixels:
            continue
        xs, ys = cols.astype(np.float64), rows.astype(np.float64)
        corners = [
            np.argmin(xs + ys),  # top-left
            np.argmax(xs - ys),  # top-right
            np.argmin(xs - ys),  # bottom-left
            np.argmax(xs + ys),  # bottom-right
        ]
        vertebrae.append((ys.mean(), np.stack([xs[corners], ys[corners]], axis=1)))
    vertebrae.sort(key=lambda item: item[0])
    if not vertebrae:
        return np.zeros((0, 2))
    return np.concatenate([quad for _, quad in vertebrae])


def landmarks_to_heatmaps(points, shape: tuple[int, int], *, sigma: float) -> np.ndarray:
    points = torch.as_tensor(np.asarray(points, dtype=np.float64).reshape(-1, 2))
    return gaussian_maps(points, tuple(shape[:2]), sigma=sigma).numpy().astype(np.float32)


def heatmaps_to_landmarks(heatmaps, *, radius: int = 2) -> np.ndarray:
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    if heatmaps.ndim != 3:
        raise ValueError(f"heatmaps must have shape (K, H, W), got {heatmaps.shape}")
    _, height, width = heatmaps.shape
    points = np.zeros((heatmaps.shape[0], 2))
    for index, heatmap in enumerate(heatmaps):
        row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        r0, r1 = max(row - radius, 0), min(row + radius + 1, height)
        c0, c1 = max(col - radius, 0), min(col + radius + 1, width)
        window = np.clip(heatmap[r0:r1, c0:c1], 0, None)
        total = window.sum()
        if total <= 0:
            points[index] = (col, row)
            continue
        rows, cols = np.mgrid[r0:r1, c0:c1]
        points[index] = ((window * cols).sum() / total, (window * rows).sum() / total)
    return points


def _box_origin_size(box) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    return np.array([x0, y0]), np.maximum(np.array([x1 - x0, y1 - y0]), 1e-6)


def to_box_frame(points, box) -> np.ndarray:
    origin, size = _box_origin_size(box)
    return (np.asarray(points, dtype=np.float64) - origin) / size


def from_box_frame(normalised, box) -> np.ndarray:
    origin, size = _box_origin_size(box)
    return np.asarray(normalised, dtype=np.float64) * size + origin
