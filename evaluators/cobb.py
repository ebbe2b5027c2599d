"""Cobb angles from the 68 AASCE landmarks, following the official MATLAB `angleCal` semantics.

The rules (see ../shared/reference/metrics.md, "Cobb angles from 68 landmarks"), with vertebrae numbered 1..17
from T1 to L5 and each vertebra's corners ordered top-left, top-right, bottom-left, bottom-right:

1. 34 endplate midpoints: point 2v-1 = mean of vertebra v's top corners, point 2v = mean of its bottom corners.
2. One direction per vertebra: mean(right corners) - mean(left corners).
3. A[i, j] = degrees(arccos(c)) with c the cosine of the two directions rounded to 8 decimals, kept in [-1, 1].
4. PT = max A. The end vertebrae (a, b), a < b, are the first maximum found scanning columns, then rows within
   the column, in index order (MATLAB's ``[m, i] = max(A); [pt, j] = max(m)``).
5. S-curve test on the midpoints m_1..m_34: l_i = (y_i - y_34)/(y_1 - y_34) - (x_i - x_34)/(x_1 - x_34) for
   i = 1..32; the spine is an S-curve when sum(L) != sum(|L|) for the outer product L = l l^T, i.e. when the l_i
   do not all share one sign. Any NaN (for instance x_1 = x_34, which makes l_1 = 0/0) makes it an S-curve,
   because NaN compares unequal.
6. Not S: MT = A[1, a], TL = A[17, b].
7. S with the main curve in the upper half (y of the lower-endplate midpoint of a + that of b < H):
   MT = max_{k <= a} A[a, k], TL = max_{k >= b} A[b, k].
8. S otherwise: MT = max_{k <= a} A[a, k], first reached at vertebra c; TL = max_{k <= c} A[c, k].

Returned as [PT, MT, TL] in degrees (positional names, as in the challenge's angles file).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

N_VERTEBRAE = 17
N_LANDMARKS = 4 * N_VERTEBRAE


def _as_landmarks(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (N_LANDMARKS, 2):
        raise ValueError(f"landmarks: expected shape ({N_LANDMARKS}, 2) of (x, y) pixels, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise ValueError("landmarks: every coordinate must be a finite number")
    return points


def endplate_midpoints(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(34, 2) midpoints: row 2v is vertebra v's upper endplate, row 2v+1 its lower endplate (0-based v)."""
    points = _as_landmarks(landmarks).reshape(N_VERTEBRAE, 2, 2, 2)  # vertebra, top/bottom, left/right, xy
    return np.asarray(points.mean(axis=2).reshape(2 * N_VERTEBRAE, 2), dtype=np.float64)


def vertebra_directions(landmarks: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """(17, 2) vectors mean(right corners) - mean(left corners), one per vertebra."""
    points = _as_landmarks(landmarks).reshape(N_VERTEBRAE, 2, 2, 2)
    return np.asarray(points[:, :, 1, :].mean(axis=1) - points[:, :, 0, :].mean(axis=1), dtype=np.float64)


def pairwise_angles(directions: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A[i, j] = arccos(round(cos, 8)) in degrees between every pair of direction vectors."""
    norms = np.linalg.norm(directions, axis=1)
    if np.any(norms == 0):
        raise ValueError("landmarks: a vertebra has coincident left and right corners (no direction)")
    cosine = (directions @ directions.T) / np.outer(norms, norms)
    return np.asarray(np.degrees(np.arccos(np.clip(np.round(cosine, 8), -1.0, 1.0))), dtype=np.float64)


def is_s_curve(midpoints: npt.NDArray[np.float64]) -> bool:
    """Step 5: True when the line-side values l_1..l_32 do not all share one sign (or any is NaN)."""
    x, y = midpoints[:, 0], midpoints[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        side = (y[:-2] - y[-1]) / (y[0] - y[-1]) - (x[:-2] - x[-1]) / (x[0] - x[-1])
        outer = np.outer(side, side)
        return bool(outer.sum() != np.abs(outer).sum())


def _first_max_pair(angles: npt.NDArray[np.float64]) -> tuple[int, int]:
    """MATLAB ``[m, rows] = max(A); [~, col] = max(m)``: first column holding the maximum, first row within it."""
    column = int(np.argmax(angles.max(axis=0)))
    row = int(np.argmax(angles[:, column]))
    return min(row, column), max(row, column)


def cobb_end_vertebrae(landmarks: npt.ArrayLike, image_height: float) -> list[tuple[int, int]]:
    """The two end vertebrae (0-based, upper first) that measure PT, MT and TL, in that order: the Cobb angle is the
    angle between their directions. Same rules as `cobb_angles` (which reads its angles off these pairs); a case
    viewer draws its Cobb lines through them."""
    return _end_vertebrae(landmarks, image_height)[1]


def _end_vertebrae(
    landmarks: npt.ArrayLike, image_height: float
) -> tuple[npt.NDArray[np.float64], list[tuple[int, int]]]:
    """The pairwise angle matrix and the (upper, lower) end-vertebra pairs of PT, MT and TL (module rules 4-8)."""
    midpoints = endplate_midpoints(landmarks)
    angles = pairwise_angles(vertebra_directions(landmarks))
    a, b = _first_max_pair(angles)
    if not is_s_curve(midpoints):
        return angles, [(a, b), (0, a), (b, N_VERTEBRAE - 1)]
    upper_half = midpoints[2 * a + 1, 1] + midpoints[2 * b + 1, 1] < image_height
    above_a = angles[a, : a + 1]
    mt_pair = (int(np.argmax(above_a)), a)
    if upper_half:
        tl_pair = (b, b + int(np.argmax(angles[b, b:])))
    else:
        c = int(np.argmax(above_a))
        tl_pair = (int(np.argmax(angles[c, : c + 1])), c)
    return angles, [(a, b), mt_pair, tl_pair]


def cobb_angles(landmarks: npt.ArrayLike, image_height: float) -> npt.NDArray[np.float64]:
    """[PT, MT, TL] in degrees from (68, 2) landmarks in pixels and the image height H in pixels.

    See the module docstring for the exact rules (MATLAB `angleCal` semantics).
    """
    angles, pairs = _end_vertebrae(landmarks, image_height)
    return np.array([angles[i, j] for i, j in pairs], dtype=np.float64)
