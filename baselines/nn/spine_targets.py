"""Training targets drawn from the 68 AASCE landmarks, and curve helpers shared by AASCE methods 5-9.

The 68 landmarks are the four corners of the 17 thoracic and lumbar vertebrae, top to bottom, each vertebra as
(top-left, top-right, bottom-left, bottom-right) in pixels (x right, y down). Everything here is plain numpy; masks are
rasterised with Pillow so they match the pixel grid of the (resized) image exactly.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from baselines.nn.converters import vertebra_corners


def _canvas(shape: tuple[int, int]) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    image = Image.new("L", (int(shape[1]), int(shape[0])), 0)
    return image, ImageDraw.Draw(image)


def _quad(corners: np.ndarray) -> list[tuple[float, float]]:
    # TL, TR, BR, BL walks the outline without crossing.
    return [tuple(corners[i]) for i in (0, 1, 3, 2)]


def spine_mask(landmarks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Binary mask of the whole spine: the outline through all left corners down and all right corners back up,
    which covers the vertebrae and the discs between them."""
    corners = vertebra_corners(landmarks)
    left = [tuple(p) for p in corners[:, [0, 2]].reshape(-1, 2)]
    right = [tuple(p) for p in corners[:, [1, 3]].reshape(-1, 2)][::-1]
    image, draw = _canvas(shape)
    draw.polygon(left + right, fill=1)
    return np.asarray(image, dtype=np.float32)


def midline_points(landmarks: np.ndarray) -> np.ndarray:
    """(51, 2) points along the spine's midline: the middle of every endplate plus the vertebra centres, so the line
    runs from the top endplate of the first vertebra to the bottom endplate of the last."""
    corners = vertebra_corners(landmarks)
    top = (corners[:, 0] + corners[:, 1]) / 2
    bottom = (corners[:, 2] + corners[:, 3]) / 2
    return np.stack([top, corners.mean(axis=1), bottom], axis=1).reshape(-1, 2)


def polyline_mask(points: np.ndarray, shape: tuple[int, int], *, width: int) -> np.ndarray:
    """Binary mask of a polyline drawn `width` pixels wide."""
    image, draw = _canvas(shape)
    draw.line([tuple(p) for p in np.asarray(points, dtype=np.float64)], fill=1, width=max(1, int(width)), joint="curve")
    return np.asarray(image, dtype=np.float32)


def centreline_mask(landmarks: np.ndarray, shape: tuple[int, int], *, width: int) -> np.ndarray:
    """Binary mask of the spine centreline (midline through the endplate middles), `width` pixels wide."""
    return polyline_mask(midline_points(landmarks), shape, width=width)


def boundary_mask(landmarks: np.ndarray, shape: tuple[int, int], *, width: int) -> np.ndarray:
    """Binary mask of the two spine boundary curves: all left corners joined top to bottom, likewise the right
    corners, each drawn `width` pixels wide (the dilation of the curves)."""
    corners = vertebra_corners(landmarks)
    left = polyline_mask(corners[:, [0, 2]].reshape(-1, 2), shape, width=width)
    right = polyline_mask(corners[:, [1, 3]].reshape(-1, 2), shape, width=width)
    return np.maximum(left, right)


def vertebra_masks(landmarks: np.ndarray, shape: tuple[int, int], *, shrink: float = 1.0) -> np.ndarray:
    """(V, H, W) binary masks, one per vertebra: its corner quadrilateral scaled by `shrink` about its centre
    (shrink < 1 gives the 'box mask' centre regions that separate touching vertebrae)."""
    corners = vertebra_corners(landmarks)
    out = np.zeros((len(corners), int(shape[0]), int(shape[1])), np.float32)
    for index, quad in enumerate(corners):
        centre = quad.mean(axis=0)
        image, draw = _canvas(shape)
        draw.polygon(_quad(centre + shrink * (quad - centre)), fill=1)
        out[index] = np.asarray(image, dtype=np.float32)
    return out


def rotated_boxes(landmarks: np.ndarray) -> np.ndarray:
    """(17, 5) rotated vertebra boxes (cx, cy, w, h, theta): theta in (-pi/2, pi/2] is the tilt of the box's width
    axis against the x axis (mean direction of the two endplates), w the mean endplate length, h the mean side
    length."""
    corners = vertebra_corners(landmarks)
    upper = corners[:, 1] - corners[:, 0]
    lower = corners[:, 3] - corners[:, 2]
    direction = upper + lower
    theta = np.arctan2(direction[:, 1], direction[:, 0])
    theta = np.where(theta > np.pi / 2, theta - np.pi, np.where(theta <= -np.pi / 2, theta + np.pi, theta))
    width = (np.linalg.norm(upper, axis=1) + np.linalg.norm(lower, axis=1)) / 2
    height = (
        np.linalg.norm(corners[:, 2] - corners[:, 0], axis=1) + np.linalg.norm(corners[:, 3] - corners[:, 1], axis=1)
    ) / 2
    centre = corners.mean(axis=1)
    return np.column_stack([centre, width, height, theta])


def box_to_corners(boxes: np.ndarray) -> np.ndarray:
    """(N, 5) rotated boxes -> (N, 4, 2) corners TL, TR, BL, BR (inverse of `rotated_boxes` for a rectangle)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    cx, cy, w, h, theta = boxes.T
    cos, sin = np.cos(theta), np.sin(theta)
    local = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
    dx = local[None, :, 0] * w[:, None]
    dy = local[None, :, 1] * h[:, None]
    x = cx[:, None] + dx * cos[:, None] - dy * sin[:, None]
    y = cy[:, None] + dx * sin[:, None] + dy * cos[:, None]
    return np.stack([x, y], axis=-1)


def curve_x(points: np.ndarray, ys: np.ndarray, *, degree: int) -> np.ndarray:
    """Least-squares polynomial x(y) of `degree` through (x, y) `points`, evaluated at `ys` (degree capped by the
    number of points - 1)."""
    points = np.asarray(points, dtype=np.float64)
    degree = int(min(degree, len(points) - 1))
    scale = max(float(np.ptp(points[:, 1])), 1.0)
    offset = float(points[:, 1].mean())
    coefficients = np.polyfit((points[:, 1] - offset) / scale, points[:, 0], degree)
    return np.polyval(coefficients, (np.asarray(ys, dtype=np.float64) - offset) / scale)


def tangent_slopes_to_cobb(slopes: np.ndarray) -> np.ndarray:
    """[major, upper, lower] Cobb angles in degrees from tangent slopes sampled top to bottom along the spine.

    With T the slope of the curve's tangent (dx/dy), the angle between the tangents at p and q is
    ``degrees(|arctan((T(p) - T(q)) / (1 + T(p) T(q)))|)``. The major angle takes p and q at the maximum and minimum
    slope over all samples; the upper (lower) angle applies the same rule to the samples above (below) the region
    between those two points, including its end point. Regions with fewer than two samples give 0.
    """
    slopes = np.asarray(slopes, dtype=np.float64)

    def angle(region: np.ndarray) -> tuple[float, int, int]:
        if len(region) < 2:
            return 0.0, 0, 0
        hi, lo = int(np.argmax(region)), int(np.argmin(region))
        t1, t2 = region[hi], region[lo]
        value = np.degrees(np.abs(np.arctan2(t1 - t2, 1.0 + t1 * t2)))
        return float(min(value, 180.0 - value) if value > 90.0 else value), min(hi, lo), max(hi, lo)

    major, first, last = angle(slopes)
    upper, _, _ = angle(slopes[: first + 1])
    lower, _, _ = angle(slopes[last:])
    return np.array([major, upper, lower])


def unusable_vertebrae(landmarks: np.ndarray, *, min_width: float = 0.5) -> np.ndarray:
    """(17,) bool: vertebrae whose left and right corners (nearly) coincide, which leaves them without a direction for
    the Cobb rules, or whose corners are not finite. (68, 2) landmarks."""
    corners = vertebra_corners(landmarks)
    direction = corners[:, [1, 3]].mean(axis=1) - corners[:, [0, 2]].mean(axis=1)
    bad = ~np.all(np.isfinite(corners), axis=(1, 2))
    return bad | ~(np.linalg.norm(np.nan_to_num(direction), axis=1) >= min_width)


def repair_vertebrae(landmarks: np.ndarray, fallback: np.ndarray, *, min_width: float = 0.5) -> np.ndarray:
    """Replace the corners of every `unusable_vertebrae` vertebra by that vertebra's `fallback` corners. (68, 2)
    arrays."""
    corners = vertebra_corners(landmarks).copy()
    bad = unusable_vertebrae(landmarks, min_width=min_width)
    corners[bad] = vertebra_corners(fallback)[bad]
    return corners.reshape(-1, 2)
