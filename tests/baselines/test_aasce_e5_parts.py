"""The non-learned parts of AASCE methods 1-4 on hand-built cases with known answers: automatic crop, vertebra
count forcing, polynomial smoothing, box filters, the spine function and angle correction, the patch clustering,
iFLYTEK's angle measurement and fusion, Seg4Reg's ensemble weights and 4° rule."""

import numpy as np
import pytest
from skimage.draw import polygon

from baselines.aasce import common, keypoint, seg4reg, topdown
from baselines.aasce.detector_corners import reject_outliers
from baselines.data import enhance, letterbox, read_cases
from baselines.nn.converters import landmarks_to_mask, to_box_frame, vertebra_corners


def _spine(tilts_degrees, *, spacing=12.0, half_width=10.0, half_height=4.0, x=60.0):
    """(V, 4, 2) vertebrae stacked vertically, each rotated by its tilt (degrees)."""
    tilts = np.radians(np.asarray(tilts_degrees, dtype=float))
    centres = np.stack([np.full(len(tilts), x), 20 + spacing * np.arange(len(tilts))], axis=1)
    return topdown.vertebra_landmarks(centres, tilts, np.full(len(tilts), half_width), half_height).reshape(-1, 4, 2)


def test_framing_crop_box_reproduces_the_training_margins():
    framing = common.Framing(top=0.1, bottom=0.2, aspect=0.5)
    points = np.array([[50.0, 100.0], [52.0, 300.0]])  # spine from y=100 to y=300 (length 200)
    assert framing.crop_box(points, (1000, 400)) == (
        0,
        80,
        116,
        340,
    )  # width 0.5 · 260 = 130 around x=51: -14 clipped to 0, 116
    assert framing.crop_box(points[:1], (1000, 400)) == (0, 0, 400, 1000)  # nothing found: whole image
    assert framing.crop_box(np.array([[5.0, 10.0], [5.0, 30.0]]), (1000, 400)) == (0, 0, 400, 1000)  # too short


def test_crop_resize_matches_box_frame():
    image = np.zeros((40, 40), dtype=np.float32)
    image[20, 10] = 1.0
    box = np.array([4.0, 12.0, 20.0, 28.0])
    patch = common.crop_resize(image, box, (16, 16))
    row, col = np.unravel_index(np.argmax(patch), patch.shape)
    u, v = to_box_frame([[10, 20]], box)[0]
    assert abs((col + 0.5) / 16 - u) <= 1 / 16 and abs((row + 0.5) / 16 - v) <= 1 / 16


def test_force_count_and_smoothing():
    corners = _spine([0] * 5).astype(float)
    assert len(common.force_count(corners, 17)) == 17
    np.testing.assert_array_equal(common.force_count(corners, 17)[-1], corners[-1])
    np.testing.assert_array_equal(common.force_count(_spine([0] * 20), 17), _spine([0] * 20)[:17])
    # corners lying on a cubic x(y) are unchanged by degree-6 smoothing; a jitter is pulled back towards it
    ys = np.linspace(0, 200, 17)
    landmarks = np.stack(
        [np.stack([1e-5 * (ys - 100) ** 3 + dx, ys + dy], axis=1) for dx, dy in ((0, 0), (20, 0), (0, 8), (20, 8))],
        axis=1,
    )
    smooth = common.smooth_landmarks(landmarks.reshape(-1, 2), 6)
    np.testing.assert_allclose(smooth, landmarks.reshape(-1, 2), atol=1e-6)
    noisy = landmarks.copy()
    noisy[8, 0, 0] += 6
    assert abs(common.smooth_landmarks(noisy.reshape(-1, 2), 6).reshape(17, 4, 2)[8, 0, 0] - landmarks[8, 0, 0]) < 4


def test_khanal_outlier_rejection():
    boxes = np.array(
        [[40, 0, 60, 10], [41, 12, 61, 22], [90, 24, 110, 34], [42, 36, 62, 46], [43, 48, 63, 58]], dtype=float
    )
    kept = reject_outliers(boxes)
    np.testing.assert_array_equal(kept, boxes[[0, 1, 3, 4]])
    lone_top = np.array([[0, 0, 20, 10], [40, 12, 60, 22], [41, 24, 61, 34]], dtype=float)
    np.testing.assert_array_equal(reject_outliers(lone_top), lone_top[1:])


def test_iflytek_box_filters():
    boxes = np.array(
        [[10, 0, 30, 10], [10, 4, 30, 14], [10, 8, 30, 18], [10, 20, 30, 30], [70, 34, 90, 44]], dtype=float
    )
    kept = keypoint.filter_boxes(boxes, 0.36)
    # box 1 overlaps both neighbours (IoU 0.43 each) and goes; the far-right box fails the distance rule
    np.testing.assert_array_equal(kept, boxes[[0, 2, 3]])
    # a missed vertebra: the box below the gap is further from the box above it (upper-left corners 25 apart) than
    # it is wide (20) and goes, but the boxes below it are compared with their own upper neighbours and stay
    column = np.array([[10, y, 30, y + 10] for y in (0, 12, 37, 49, 61)], dtype=float)
    np.testing.assert_array_equal(keypoint.filter_boxes(column, 0.36), column[[0, 1, 3, 4]])


def test_iflytek_merge_coincident_vertebrae():
    square = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)  # height 10 (top mid-point to bottom's)
    corners = np.stack([square, square + [1, 2], square + [0, 12], square + [0, 24]])
    merged = keypoint.merge_coincident(corners, 0.7)
    # the first two centres are 2.2 apart (< 7): one vertebra at their mean; the others are 12 apart and stay
    np.testing.assert_allclose(merged, np.stack([square + [0.5, 1.0], square + [0, 12], square + [0, 24]]))
    np.testing.assert_array_equal(keypoint.merge_coincident(corners, 0.0), corners)


def test_iflytek_patch_peaks_are_sub_pixel():
    from baselines.nn.converters import landmarks_to_heatmaps

    truth = np.array([[3.3, 4.6], [9.0, 2.0], [0.2, 9.7]])
    heatmap = landmarks_to_heatmaps(truth, (12, 12), sigma=1.0).max(axis=0)
    peaks = keypoint.local_peaks(heatmap, 0.3)
    peaks = peaks[np.argsort(peaks[:, 0])]
    # Gaussian peaks are recovered exactly inside the map; on the left border x keeps its integer column
    np.testing.assert_allclose(peaks, [[0.0, 9.7], [3.3, 4.6], [9.0, 2.0]], atol=1e-4)
    assert len(keypoint.local_peaks(heatmap, 1.01)) == 0


def test_spine_function_midpoints_and_tilt():
    mask = np.zeros((100, 80), dtype=bool)
    for row in range(10, 90):
        centre = 20 + 0.5 * row
        mask[row, int(centre - 6) : int(centre + 6) + 1] = True
    midpoints = topdown.spine_midpoints(mask)
    curve = topdown.SpineFunction(midpoints, 3)
    np.testing.assert_allclose(curve([20.0, 60.0]), [30.0, 50.0], atol=0.6)
    assert np.degrees(curve.tilt(50.0)) == pytest.approx(-np.degrees(np.arctan(0.5)), abs=1.0)
    assert topdown.tilt_extremes(np.array([0.0, 1.0, 2.0, 1.0, 0.0, 0.5])) == [0, 2, 4, 5]


def test_angle_correction_recovers_a_rotated_vertebra():
    image = np.full((80, 80), 0.2)
    for true_tilt in (-12.0, 7.0):
        corners = _spine([true_tilt], x=40.0, half_width=14.0, half_height=6.0)[0]
        canvas = image.copy()
        rows, cols = polygon(corners[[0, 1, 3, 2], 1], corners[[0, 1, 3, 2], 0], canvas.shape)
        canvas[rows, cols] = 0.9
        centre = corners.mean(axis=0)
        found = topdown.corrected_tilt(canvas, centre, 14.0, 6.0, np.radians(true_tilt + 9), config=topdown.Config())
        assert np.degrees(found) == pytest.approx(true_tilt, abs=2.0)


def test_topdown_geometry_from_true_masks_tracks_the_official_angles(aasce_train):
    errors = []
    config = topdown.Config(size=(192, 96), auto_crop=False)
    for case in read_cases(aasce_train, ground_truth=True)[:6]:
        image = enhance(case.image)
        _, box = letterbox(image, config.size)
        mask = landmarks_to_mask(box.to_resized(case.landmarks), config.size, gap_class=True) > 0
        predictor = topdown._Predictor.__new__(topdown._Predictor)
        predictor.config, predictor.mask = config, lambda _image, mask=mask, box=box: (mask, box)
        errors.append(np.abs(predictor.predict_angles(image, case.shape[0]) - case.angles))
    assert np.mean(errors) < 8.0  # degrees, from a perfect segmentation; the training-mean predictor is far worse


def test_iflytek_angle_measurement_on_an_s_curve():
    tilt_profile = [0, -5, -10, -15, -10, 0, 10, 20, 25, 20, 10, 0, -5, -8, -5, 0, 0]
    corners = _spine(tilt_profile)
    corners[:, :, 0] += 15 * np.sin(np.linspace(0, 2 * np.pi, 17))[:, None]
    selection = keypoint.select_vertebrae(corners)
    main, upper, lower = keypoint.angles_at(corners, selection)
    assert main == pytest.approx(40.0, abs=1e-6)  # -15° (vertebra 3) to +25° (vertebra 8)
    assert selection[1:3] in ((3, 8), (8, 13))
    assert {round(upper), round(lower)} <= {15, 33, 0}
    assert keypoint.passes_quality(corners, selection, 1.5)
    squashed = corners.copy()
    squashed[selection[1], 1, 0] += 30  # a very long top edge
    assert not keypoint.passes_quality(squashed, selection, 1.5)


def test_iflytek_clustering_recovers_17_vertebrae(aasce_train):
    rng = np.random.default_rng(0)
    config = keypoint.PRESETS["standard"]
    for case in read_cases(aasce_train, ground_truth=True)[:3]:
        corners = vertebra_corners(case.landmarks)
        groups = [np.concatenate([corners[:, g] + rng.normal(0, 0.5, (17, 2)) for _ in range(8)]) for g in range(4)]
        height = float(np.median(np.ptp(corners[:, :, 1], axis=1)))
        found = keypoint.cluster_vertebrae(groups, height, config=config, squeeze=False, seed=0)
        assert found.shape == (17, 4, 2)
        assert np.abs(found - corners).max() < 2.0


def test_iflytek_fusion_votes_and_averages():
    base = [0, -5, -10, -15, -10, 0, 10, 20, 25, 20, 10, 0, -5, -8, -5, 0, 0]
    a = _spine(base)
    b = _spine([t * 1.1 for t in base])
    c = _spine([t if i != 3 else -30 for i, t in enumerate(base)])
    fused = keypoint.fuse(
        {"method-1": a, "method-2": b, "method-2-squeezed": c}, quality_ratio=1.5, preferred="method-2"
    )
    expected = np.mean([keypoint.angles_at(x, keypoint.select_vertebrae(a)) for x in (a, b, c)], axis=0)
    np.testing.assert_allclose(fused, expected)
    assert keypoint.fuse({"method-1": np.zeros((0, 4, 2))}, quality_ratio=1.5, preferred="method-2") is None
    # Method-1 finds one more vertebra above the first (the indices shift by one): the vote is on positions, so the
    # same vertebrae are agreed and every output is measured at them
    extra = np.concatenate([_spine([0.0], x=60.0) - [0, 12.0], a])
    shifted = keypoint.fuse(
        {"method-1": extra, "method-2": b, "method-2-squeezed": c}, quality_ratio=1.5, preferred="method-2"
    )
    selection = keypoint.select_vertebrae(a)
    expected = np.mean(
        [
            keypoint.angles_at(extra, tuple(i + 1 for i in selection)),
            keypoint.angles_at(b, selection),
            keypoint.angles_at(c, selection),
        ],
        axis=0,
    )
    np.testing.assert_allclose(shifted, expected)


def test_seg4reg_ensemble_weights_and_small_angle_rule():
    np.testing.assert_allclose(seg4reg.ensemble_weights([2.0, 4.0]), [2 / 3, 1 / 3])
    np.testing.assert_allclose(seg4reg.ensemble_weights([float("nan"), 1.0]), [0.5, 0.5])
    np.testing.assert_allclose(seg4reg.finalise([3.9, 4.0, -2.0], 4.0), [0.0, 4.0, 0.0])


@pytest.mark.parametrize("reg_input, channels", [("mask", 2), ("image", 1), ("image+mask", 3)])
def test_seg4reg_regression_input_ablation(reg_input, channels):
    config = seg4reg.Config(reg_input=reg_input, reg_size=(32, 16))
    inputs = seg4reg._regression_inputs(np.zeros((2, 64, 32), np.float32), np.zeros((2, 2, 64, 32), np.float32), config)
    assert inputs.shape == (2, channels, 32, 16) and seg4reg._reg_channels(config) == channels


def test_framing_length_ratio_and_trim_mask():
    # a straight column of 17 vertebrae 10 px wide and 6 px apart (length 17 * 6 = 102 from top to bottom)
    corners = []
    for level in range(17):
        y0 = 20 + 6 * level
        corners += [[40, y0], [50, y0], [40, y0 + 5], [50, y0 + 5]]

    class _Case:
        image = np.zeros((150, 80))
        landmarks = np.array(corners, dtype=float)

    framing = common.framing_from_cases([_Case()])
    assert framing.length_ratio == pytest.approx(101 / 10)  # (y of the last bottom corner - first top) / width
    # a predicted mask 10 px wide running from row 0 to row 119: 120 rows > 1.1 * 101 -> keep the bottom 101 rows
    mask = np.zeros((150, 80), dtype=bool)
    mask[0:120, 40:50] = True
    trimmed = framing.trim_mask(mask)
    rows = np.flatnonzero(trimmed.any(axis=1))
    assert (rows[0], rows[-1]) == (19, 119)
    # within the tolerance nothing is cut; without a ratio (old checkpoints) nothing is cut
    mask[:10] = False
    assert np.array_equal(framing.trim_mask(mask), mask)
    assert np.array_equal(common.Framing(0.1, 0.1, 0.5).trim_mask(np.ones((30, 3), bool)), np.ones((30, 3), bool))


def test_refine_crop_recentres_on_the_points_found_in_each_crop():
    framing = common.Framing(top=0.0, bottom=0.0, aspect=0.5)
    image = np.zeros((400, 400))

    def find_points(crop):
        # the "network" sees a spine from row 100 to 300 at x = 200 of the whole image, but in a crop only the part
        # it contains; in whole-image coordinates the crop starts where the caller cropped it
        return np.array(
            [
                [200.0 - find_points.offset[0], 100.0 - find_points.offset[1]],
                [200.0 - find_points.offset[0], 300.0 - find_points.offset[1]],
            ]
        )

    find_points.offset = (0, 0)
    box = common.refine_crop(find_points, image, framing, rounds=1)
    assert box == (150, 100, 250, 300)  # 200 rows high, aspect 0.5 -> 100 wide around x = 200
    calls = []

    def shifting(crop):
        calls.append(crop.shape)
        return find_points(crop) if len(calls) == 1 else np.array([[50.0, 0.0], [50.0, 200.0]])

    assert common.refine_crop(shifting, image, framing, rounds=2) == (150, 100, 250, 300)
    assert calls == [(400, 400), (200, 100)]
    # a start box: the first round looks only at that crop
    calls.clear()
    assert common.refine_crop(
        lambda crop: calls.append(crop.shape) or np.zeros((0, 2)), image, framing, rounds=1, start=(10, 20, 110, 220)
    ) == (10, 20, 110, 220)
    assert calls == [(200, 100)]


def test_framing_windows_cover_the_image_at_the_training_aspect():
    framing = common.Framing(top=0.1, bottom=0.1, aspect=0.5)
    windows = common.framing_windows((1000, 800), framing, heights=(0.5, 1.0), step=0.25, columns=3)
    # height 500: rows at y0 = 0, 250, 500 (step 250 px) x columns at x0 = 0, 275, 550 (width 250); height 1000:
    # one row, width 500 centred at x0 = 150 (< image width, so three columns: 0, 150, 300)
    assert windows[:3] == [(0, 0, 250, 500), (275, 0, 525, 500), (550, 0, 800, 500)]
    assert windows[-3:] == [(0, 0, 500, 1000), (150, 0, 650, 1000), (300, 0, 800, 1000)]
    assert len(windows) == 9 + 3
    # a window as wide as the image is centred, once
    assert common.framing_windows((100, 40), common.Framing(0, 0, 1.0), heights=(1.0,), step=0.1, columns=5) == [
        (0, 0, 40, 100)
    ]


def test_iflytek_spine_search_picks_the_window_the_network_trusts_most():
    """``locate_spine`` scores every candidate window with SimpleBaseline I's confidence and returns the best one: a
    stand-in network whose heatmaps peak only where the crop's top-left pixel is bright picks the window starting on
    the single bright pixel."""
    config = keypoint.PRESETS["tiny"]
    framing = common.Framing(top=0.0, bottom=0.0, aspect=0.5)
    image = np.zeros((200, 100), dtype=np.float32)
    windows = common.framing_windows(
        image.shape, framing, heights=config.window_heights, step=config.window_step, columns=config.window_columns
    )
    target = windows[len(windows) // 2]
    image[target[1], target[0]] = 1.0

    class _Networks(keypoint._Networks):
        def __init__(self):
            self.config = config

        def framing_confidence(self, images):
            return np.array([float(crop[0, 0]) - 0.01 * crop.size / image.size for crop in images])

    assert _Networks().locate_spine(image, framing) == target
