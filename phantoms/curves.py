"""Spine centrelines for the radiograph phantoms: a tangent-angle profile along the spine, integrated into vertebra
centres and orientations.

The tangent angle theta(t) (degrees, 0 = straight down the image, positive turning towards +x) along the normalised
arc position t in [0, 1] is a tilt plus smooth steps, `theta(t) = tilt + sum_k a_k / 2 * tanh((t - c_k) / w_k)`.
One step bends the spine into a C-curve whose Cobb angle is about |a_k|; two steps of opposite sign make an S-curve.
Each vertebra is oriented along the tangent at its centre, plus a small annotation-like jitter, so its endplates
follow the curve and the Cobb angle measured from its corners is close to the sampled step size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CURVE_KINDS = ("straight", "C", "S")
CURVE_WEIGHTS = (0.25, 0.35, 0.40)


@dataclass(frozen=True)
class Curve:
    kind: str
    tilt: float  # degrees
    steps: tuple[tuple[float, float, float], ...]  # (amplitude deg, centre t, width t)

    def angle(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        theta = np.full_like(t, self.tilt)
        for amplitude, centre, width in self.steps:
            theta += amplitude / 2.0 * np.tanh((t - centre) / width)
        return theta


def major_angle(rng: np.random.Generator) -> float:
    """Main curve size in degrees: right-skewed over 0-90 like a scoliosis clinic's population (many mild curves)."""
    return float(min(88.0, 3.0 + 85.0 * rng.beta(1.15, 3.2)))


def sample_curve(rng: np.random.Generator, *, kind: str | None = None) -> Curve:
    kind = kind or str(rng.choice(CURVE_KINDS, p=CURVE_WEIGHTS))
    tilt = float(rng.normal(0.0, 2.5))
    sign = 1.0 if rng.random() < 0.5 else -1.0
    steps: tuple[tuple[float, float, float], ...]
    if kind == "straight":
        steps = ((sign * float(rng.uniform(0.0, 7.0)), float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.12, 0.3))),)
    elif kind == "C":
        steps = ((sign * major_angle(rng), float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.08, 0.2))),)
    elif kind == "S":
        first = major_angle(rng)
        second = first * float(rng.uniform(0.45, 1.1))
        upper, lower = float(rng.uniform(0.22, 0.42)), float(rng.uniform(0.6, 0.8))
        steps = (
            (sign * first, upper, float(rng.uniform(0.06, 0.13))),
            (-sign * min(second, 88.0), lower, float(rng.uniform(0.06, 0.13))),
        )
    else:
        raise ValueError(f"unknown curve kind {kind!r}; expected one of {CURVE_KINDS}")
    return Curve(kind=kind, tilt=tilt, steps=steps)


def centreline(
    *, heights: np.ndarray, gaps: np.ndarray, angle_deg: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Centres (n, 2) in mm (x right, y down, first vertebra's centre at the origin) and tangent angles (n,) in
    degrees for vertebrae of `heights` separated by `gaps` (n - 1), laid along the arc with tangent `angle_deg(t)`."""
    heights = np.asarray(heights, dtype=np.float64)
    gaps = np.asarray(gaps, dtype=np.float64)
    centres_s = np.concatenate([[0.0], np.cumsum((heights[:-1] + heights[1:]) / 2.0 + gaps)])
    length = centres_s[-1] + (heights[0] + heights[-1]) / 2.0
    s = np.linspace(-heights[0] / 2.0, centres_s[-1] + heights[-1] / 2.0, 1024)
    theta = np.radians(angle_deg((s - s[0]) / length))
    ds = np.diff(s)
    mid = (theta[:-1] + theta[1:]) / 2.0
    x = np.concatenate([[0.0], np.cumsum(np.sin(mid) * ds)])
    y = np.concatenate([[0.0], np.cumsum(np.cos(mid) * ds)])
    cx, cy = np.interp(centres_s, s, x), np.interp(centres_s, s, y)
    centres = np.stack([cx - cx[0], cy - cy[0]], axis=1)
    return centres, np.degrees(np.interp(centres_s, s, theta))


def quad_corners(centres: np.ndarray, angles_deg: np.ndarray, widths: np.ndarray, heights: np.ndarray,
                 *, wedge: np.ndarray | None = None) -> np.ndarray:
    """Corners (n, 4, 2) in the order top-left, top-right, bottom-left, bottom-right of boxes centred at `centres`,
    rotated by `angles_deg` (the box's downward axis follows the tangent). `wedge` (n,) in degrees tilts the two
    endplates apart (positive: the right side taller)."""
    theta = np.radians(angles_deg)
    down = np.stack([np.sin(theta), np.cos(theta)], axis=1)
    right = np.stack([np.cos(theta), -np.sin(theta)], axis=1)
    half_w, half_h = (widths / 2.0)[:, None], (heights / 2.0)[:, None]
    half_wedge = np.zeros(len(centres)) if wedge is None else np.tan(np.radians(wedge)) / 2.0
    lift = (half_wedge * widths / 2.0)[:, None]
    top_left = centres - right * half_w - down * (half_h - lift)
    top_right = centres + right * half_w - down * (half_h + lift)
    bottom_left = centres - right * half_w + down * (half_h - lift)
    bottom_right = centres + right * half_w + down * (half_h + lift)
    return np.stack([top_left, top_right, bottom_left, bottom_right], axis=1)
