"""Vectorised 2D drawing on float canvases: polygons filled through their bounding box only (Pillow's C scan
conversion at 2x supersampling, so edges get partial-area values), ellipses (scikit-image), strips along
polylines. Coordinates are (x, y) in canvas pixels, pixel centres at integers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw
from skimage.draw import ellipse as _ellipse

SUPERSAMPLE = 2
#: An (x, y) pair: a centre, or semi-axes.
Point = Sequence[float] | np.ndarray


def add_polygon(canvas: np.ndarray, points_xy: np.ndarray, value: float) -> None:
    """Add `value` times the covered fraction of each pixel inside the polygon."""
    points_xy = np.asarray(points_xy, dtype=np.float64)
    x0, y0 = np.floor(points_xy.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points_xy.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, canvas.shape[1]), min(y1, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    s = SUPERSAMPLE
    mask = Image.new("L", ((x1 - x0) * s, (y1 - y0) * s), 0)
    # pixel i covers [i - 0.5, i + 0.5]; sub-pixel j of the mask has its centre at x0 - 0.5 + (j + 0.5) / s
    local = (points_xy - [x0 - 0.5, y0 - 0.5]) * s - 0.5
    ImageDraw.Draw(mask).polygon([tuple(p) for p in local.tolist()], fill=255)
    cover = np.asarray(mask.reduce(s), dtype=np.float32)  # box average of each pixel's s x s sub-pixels
    canvas[y0:y1, x0:x1] += (value / 255.0) * cover


def add_ellipse(canvas: np.ndarray, centre_xy: Point, radii_xy: Point, value: float, *, angle_deg: float = 0.0) -> None:
    """Ellipse with semi-axes `radii_xy` along x and y before a rotation of `angle_deg` (towards +x from down)."""
    rx, ry = max(float(radii_xy[0]), 0.5), max(float(radii_xy[1]), 0.5)
    rows, cols = _ellipse(float(centre_xy[1]), float(centre_xy[0]), ry, rx, shape=canvas.shape,
                          rotation=np.radians(angle_deg))
    canvas[rows, cols] += value


def add_ring(canvas: np.ndarray, centre_xy: Point, radii_xy: Point, value: float, *, inner: float = 0.6,
             angle_deg: float = 0.0) -> None:
    """An elliptic ring (cortical bone seen end-on): the ellipse minus a concentric one `inner` times its size."""
    add_ellipse(canvas, centre_xy, radii_xy, value, angle_deg=angle_deg)
    add_ellipse(canvas, centre_xy, (radii_xy[0] * inner, radii_xy[1] * inner), -value * 0.7, angle_deg=angle_deg)


def strip_polygon(points_xy: np.ndarray, half_widths: npt.ArrayLike) -> np.ndarray:
    """Outline polygon of a band of half-width `half_widths` (scalar or per point) around a polyline."""
    points = np.asarray(points_xy, dtype=np.float64)
    tangent = np.gradient(points, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    half = np.broadcast_to(np.asarray(half_widths, dtype=np.float64), (len(points),))[:, None]
    return np.concatenate([points + normal * half, (points - normal * half)[::-1]])


def add_strip(canvas: np.ndarray, points_xy: np.ndarray, half_widths: npt.ArrayLike, value: float) -> None:
    add_polygon(canvas, strip_polygon(points_xy, half_widths), value)


def resize(array: np.ndarray, *, rows: int, cols: int) -> np.ndarray:
    """Bilinear resize of a 2D array as float32 (Pillow maps pixel centres: x_in = (x_out + 0.5) * in / out - 0.5)."""
    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.float32))
    return np.asarray(image.resize((int(cols), int(rows)), Image.Resampling.BILINEAR))
