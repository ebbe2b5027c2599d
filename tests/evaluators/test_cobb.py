"""Cobb angles: hand-worked landmark sets per branch of the MATLAB `angleCal` rules, invariance, and agreement with
an independent, loop-based reimplementation written here from the reference text (1-based indices as there)."""

import math

import numpy as np
import pytest

from evaluators.cobb import _first_max_pair, cobb_angles, endplate_midpoints, is_s_curve

HALF_WIDTH, HALF_HEIGHT, PITCH, TOP = 15.0, 10.0, 40.0, 100.0


def spine(tilts_deg, centres_x):
    """68 landmarks of 17 rectangles: vertebra v centred at (centres_x[v], TOP + PITCH v), rotated by tilts_deg[v]
    (image coordinates, y down). Its direction (right minus left corners) makes the angle tilt with the x-axis, so
    the angle between two vertebrae is |tilt_i - tilt_j|."""
    points = []
    for tilt, cx, cy in zip(tilts_deg, centres_x, TOP + PITCH * np.arange(17)):
        c, s = math.cos(math.radians(tilt)), math.sin(math.radians(tilt))
        for dx, dy in (
            (-HALF_WIDTH, -HALF_HEIGHT),
            (HALF_WIDTH, -HALF_HEIGHT),
            (-HALF_WIDTH, HALF_HEIGHT),
            (HALF_WIDTH, HALF_HEIGHT),
        ):
            points.append((cx + c * dx - s * dy, cy + s * dx + c * dy))
    return np.array(points)


def c_bulge(*, drift=0.0, shift_last=0.0):
    x = 200 + 60 * np.sin(np.pi * np.arange(17) / 16) + drift * np.arange(17)
    x[-1] += shift_last
    return x


def s_bulge():
    return 200 + 50 * np.sin(2 * np.pi * np.arange(17) / 16) + 0.7 * np.arange(17)


# ---- hand-worked cases: tilts chosen so every expected angle is a difference of two tilts ----

C_TILTS = [0, 10, 15, 12, 8, 4, 0, -4, -8, -12, -16, -20, -15, -10, -8, -6, 0]
# PT = 15 - (-20) = 35 at (a, b) = (3, 12) 1-based; all l_i <= 0 (bulge to the right of the line from the last to
# the first midpoint, which drifts left): not S, MT = angle(1, 3) = 15, TL = angle(17, 12) = 20.

S_TILTS = [4, 0, 5, 15, 10, 5, 0, -5, -10, -15, -20, -15, -10, -5, 0, 3, 6]
# PT = 15 - (-20) = 35 at (4, 11). Upper half: MT = max_{k<=4} |15 - t_k| = 15 (k = 2),
# TL = max_{k>=11} |-20 - t_k| = 26 (k = 17). Lower half: MT = 15 reached first at c = 2,
# TL = max_{k<=2} angle(2, k) = |0 - 4| = 4.
# y of the lower endplates of vertebrae 4 and 11: 100 + 40*3 + 10 = 230 and 100 + 40*10 + 10 = 510 (sum 740,
# up to the small tilt offsets).

NAN_TILTS = [0, 4, 8, 12, 8, 4, 0, -4, -8, -12, -16, -12, -8, -4, -2, 2, 0]
# PT = 28 at (4, 11). x_1 = x_34 exactly (both end vertebrae untilted, centred at x = 200): l_1 = 0/0 = NaN, so
# the spine counts as S (upper half): MT = max_{k<=4} |12 - t_k| = 12, TL = max_{k>=11} |-16 - t_k| = 18 (k = 16).
# Moving the last vertebra half a pixel left makes x_1 != x_34 and every l_i <= 0: a C-curve,
# TL = angle(17, 11) = 16. (Half a pixel right puts l_2 on the other side: S again.)

TIE_TILTS = [12, 6, 2, 0, -4, -10, 12, -10, -8, -6, -4, -2, 0, 1, 2, 3, 4]
# Maximum 22 reached by (1, 6), (1, 8), (6, 7), (7, 8). MATLAB's column-then-row scan finds column 1 first and
# row 6 in it: (a, b) = (1, 6). S, upper half: MT = max_{k<=1} = 0, TL = max_{k>=6} angle(6, k) = 22 (k = 7).
# Had (1, 8) been chosen, TL would be max_{k>=8} |-10 - t_k| = 14.


@pytest.mark.parametrize(
    ("tilts", "centres", "height", "s_curve", "expected"),
    [
        (C_TILTS, c_bulge(drift=-1.0), 2000, False, [35, 15, 20]),
        (C_TILTS, c_bulge(drift=1.0), 2000, True, [35, 15, 20]),
        (S_TILTS, s_bulge(), 2000, True, [35, 15, 26]),
        (S_TILTS, s_bulge(), 700, True, [35, 15, 4]),
        (NAN_TILTS, c_bulge(), 2000, True, [28, 12, 18]),
        (NAN_TILTS, c_bulge(shift_last=-0.5), 2000, False, [28, 12, 16]),
        (NAN_TILTS, c_bulge(shift_last=0.5), 2000, True, [28, 12, 18]),
        (TIE_TILTS, s_bulge(), 2000, True, [22, 0, 22]),
    ],
    ids=[
        "c-curve",
        "c-curve-tilted-end-counts-as-s",
        "s-upper-half",
        "s-lower-half",
        "x1-equals-x34-nan",
        "x1-left-of-x34",
        "x1-right-of-x34",
        "pt-tie",
    ],
)
def test_hand_worked_branches(tilts, centres, height, s_curve, expected):
    landmarks = spine(tilts, centres)
    assert is_s_curve(endplate_midpoints(landmarks)) is s_curve
    np.testing.assert_allclose(cobb_angles(landmarks, height), expected, atol=1e-5)


def test_straight_spine_is_all_zero():
    landmarks = spine([0] * 17, [200.0] * 17)  # x_1 = x_34: NaN makes it S, every angle is 0
    assert is_s_curve(endplate_midpoints(landmarks))
    np.testing.assert_array_equal(cobb_angles(landmarks, 1000), [0, 0, 0])


def test_first_max_pair_scans_columns_then_rows():
    angles = np.zeros((17, 17))
    for i, j in ((2, 9), (4, 5), (2, 6)):
        angles[i, j] = angles[j, i] = 30.0
    assert _first_max_pair(angles) == (2, 6)  # column 2 first, then row 6 before row 9


def test_rejects_wrong_shape_and_nan():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        cobb_angles(np.zeros((67, 2)), 100)
    bad = spine(C_TILTS, c_bulge(drift=-1.0))
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        cobb_angles(bad, 100)


@pytest.mark.parametrize("case", ["c", "s"])
def test_rotation_and_translation_invariance(case):
    tilts, centres = (C_TILTS, c_bulge(drift=-1.0)) if case == "c" else (S_TILTS, s_bulge())
    landmarks = spine(tilts, centres)
    expected = cobb_angles(landmarks, 2000)
    rng = np.random.default_rng(3)
    for _ in range(5):
        phi = math.radians(rng.uniform(-4, 4))
        rotation = np.array([[math.cos(phi), -math.sin(phi)], [math.sin(phi), math.cos(phi)]])
        shift = rng.uniform(-50, 50, size=2)
        moved = (landmarks - landmarks.mean(0)) @ rotation.T + landmarks.mean(0) + shift
        np.testing.assert_allclose(cobb_angles(moved, 2000 + 2 * shift[1]), expected, atol=1e-4)


# ---- independent reimplementation from the reference text (loops, 1-based) ----


def reference_cobb(landmarks, height):
    p = np.asarray(landmarks).tolist()  # plain Python floats: division by zero raises instead of giving inf

    def point(k):  # landmark k, 1-based
        return p[k - 1]

    mid = {}
    direction = {}
    for v in range(1, 18):
        tl, tr, bl, br = (point(4 * (v - 1) + i) for i in range(1, 5))
        mid[2 * v - 1] = ((tl[0] + tr[0]) / 2, (tl[1] + tr[1]) / 2)
        mid[2 * v] = ((bl[0] + br[0]) / 2, (bl[1] + br[1]) / 2)
        direction[v] = ((tr[0] + br[0]) / 2 - (tl[0] + bl[0]) / 2, (tr[1] + br[1]) / 2 - (tl[1] + bl[1]) / 2)

    def angle(i, j):
        (ax, ay), (bx, by) = direction[i], direction[j]
        cosine = (ax * bx + ay * by) / (math.hypot(ax, ay) * math.hypot(bx, by))
        cosine = min(1.0, max(-1.0, round(cosine, 8)))
        return math.degrees(math.acos(cosine))

    best, a, b = -1.0, None, None
    for column in range(1, 18):  # MATLAB max: over rows per column, then over columns, first occurrence
        for row in range(1, 18):
            if angle(row, column) > best:
                best, a, b = angle(row, column), min(row, column), max(row, column)
    x34, y34 = mid[34]
    x1, y1 = mid[1]
    values = []
    for i in range(1, 33):
        xi, yi = mid[i]
        try:
            first = (yi - y34) / (y1 - y34)
        except ZeroDivisionError:
            first = math.nan
        try:
            second = (xi - x34) / (x1 - x34)
        except ZeroDivisionError:
            second = math.nan if xi == x34 else math.copysign(math.inf, xi - x34) * math.copysign(1, x1 - x34)
        values.append(first - second)
    total = sum(li * lj for li in values for lj in values)
    total_abs = sum(abs(li * lj) for li in values for lj in values)
    s_curve = not (total == total_abs)
    if not s_curve:
        return [best, angle(1, a), angle(17, b)]
    mt, c = -1.0, None
    for k in range(1, a + 1):
        if angle(a, k) > mt:
            mt, c = angle(a, k), k
    if mid[2 * a][1] + mid[2 * b][1] < height:
        return [best, mt, max(angle(b, k) for k in range(b, 18))]
    return [best, mt, max(angle(c, k) for k in range(1, c + 1))]


def test_agrees_with_independent_reimplementation():
    rng = np.random.default_rng(7)
    cases = [
        (spine(C_TILTS, c_bulge(drift=-1.0)), 2000),
        (spine(S_TILTS, s_bulge()), 700),
        (spine(NAN_TILTS, c_bulge()), 2000),
        (spine(TIE_TILTS, s_bulge()), 2000),
    ]
    for _ in range(60):
        tilts = np.cumsum(rng.normal(0, 4, 17))
        amplitude = rng.uniform(-60, 60)
        centres = 300 + amplitude * np.sin(rng.choice([1, 2]) * np.pi * np.arange(17) / 16) + rng.normal(0, 3, 17)
        landmarks = spine(tilts, centres) + rng.normal(0, 0.5, (68, 2))
        cases.append((landmarks, rng.uniform(500, 1400)))
    for landmarks, height in cases:
        np.testing.assert_allclose(cobb_angles(landmarks, height), reference_cobb(landmarks, height), atol=1e-9)
