import numpy as np
import pytest
import torch

from baselines.aasce import coarse_to_fine as c2f
from tests.baselines.aasce_runs import assert_loss_falls, assert_valid_angles, train_and_predict

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)


def _vertical_spine(tilt_degrees: float = 0.0):
    points = []
    for v in range(17):
        top, bottom = 10 + 8 * v, 16 + 8 * v
        points += [(20, top), (32, top), (20, bottom), (32, bottom)]
    points = np.array(points, float)
    # tilt the upper endplate of vertebra 8 about its midpoint
    centre = points[32:34].mean(axis=0)
    angle = np.radians(tilt_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points[32:34] = (points[32:34] - centre) @ rotation.T + centre
    return points


def test_refine_rotates_an_outlying_endplate_onto_the_curve_normal():
    landmarks = _vertical_spine(tilt_degrees=25.0)
    curve_points = np.column_stack([np.full(17, 26.0), 13 + 8 * np.arange(17)])
    refined = c2f.refine(landmarks, curve_points, c2f.PRESETS["tiny"])
    endplate = refined[33] - refined[32]
    assert np.degrees(np.arctan2(endplate[1], endplate[0])) == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(np.delete(refined, [32, 33], axis=0), np.delete(landmarks, [32, 33], axis=0))
    small = c2f.refine(_vertical_spine(tilt_degrees=3.0), curve_points, c2f.PRESETS["tiny"])
    assert np.allclose(small, _vertical_spine(tilt_degrees=3.0))  # within tolerance: untouched


def test_box_mask_positions_and_outlier_rejection():
    tsm = np.ones((100, 30))
    boxes = np.zeros((17, 100, 30))
    for k in range(17):
        boxes[k, 5 + 5 * k : 8 + 5 * k, 14:17] = 1.0
    boxes[5] = 0
    boxes[5, 2:5, 1:4] = 1.0  # out of order and off the midline
    positions, peaks = c2f.box_mask_positions(tsm, boxes)
    assert positions[0] == pytest.approx([15.0, 6.0])
    valid = c2f.valid_positions(positions, peaks)
    assert not valid[5] and valid.sum() == 16


def test_corner_read_out_uses_the_mean_of_pixels_above_half():
    box_map = torch.ones(1, 8, 8)
    points = torch.zeros(1, 4, 8, 8)
    points[0, 0, 2, 3] = points[0, 0, 2, 4] = 0.9  # mean (3.5, 2)
    points[0, 1, 6, 1] = 0.3  # nothing above 0.5: arg-max
    corners = c2f.corners_from_heatmaps(box_map, points)
    assert corners[0, 0].tolist() == [3.5, 2.0]
    assert corners[0, 1].tolist() == [1.0, 6.0]


def test_tiny_training_lowers_the_loss_and_predicts_valid_angles(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict("coarse-to-fine", train_dir=aasce_train, test_dir=aasce_test,
                                              tmp_path=tmp_path)
    assert_loss_falls(stored["losses"])
    for stage in ("unet_b", "unet_c", "local"):
        assert_loss_falls(stored["history"][stage])
    assert set(stored["state"]) == {"a", "b", "c", "d", "e", "mask_rcnn"}
    assert_valid_angles(table, aasce_test, scores)
