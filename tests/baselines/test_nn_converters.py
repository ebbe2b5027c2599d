"""Landmark ↔ mask / box / heatmap converters: hand-worked values and round trips."""

import numpy as np
import pytest

from baselines.nn.converters import (
    from_box_frame,
    heatmaps_to_landmarks,
    landmarks_to_boxes,
    landmarks_to_heatmaps,
    landmarks_to_mask,
    mask_to_landmarks,
    to_box_frame,
    vertebra_centres,
)


def _ladder(count: int = 3, *, tilt: float = 0.0) -> np.ndarray:
    """`count` vertebrae 20 px wide, 8 px tall, 4 px apart, top to bottom; `tilt` shifts the right corners down."""
    points = []
    for index in range(count):
        top = 10 + 12 * index
        points += [[10, top], [30, top + tilt], [10, top + 8], [30, top + 8 + tilt]]
    return np.array(points, dtype=float)


def test_boxes_widened_symmetrically_and_clipped():
    boxes = landmarks_to_boxes(_ladder(2), widen=(10, 4))
    np.testing.assert_allclose(boxes, [[5, 8, 35, 20], [5, 20, 35, 32]])
    clipped = landmarks_to_boxes(_ladder(1), widen=(40, 0), image_shape=(50, 36))
    np.testing.assert_allclose(clipped, [[0, 10, 35, 18]])


def test_mask_round_trip_recovers_corners():
    landmarks = _ladder(3, tilt=2.0)
    mask = landmarks_to_mask(landmarks, (60, 40))
    recovered = mask_to_landmarks(mask)
    assert recovered.shape == (12, 2)
    assert np.abs(recovered - landmarks).max() <= 1.0


def test_gap_class_fills_the_space_between_vertebrae_only():
    landmarks = _ladder(2)
    mask = landmarks_to_mask(landmarks, (40, 40), gap_class=True)
    assert mask[20, 20] == 2  # between the first vertebra (y 10-18) and the second (y 22-30)
    assert mask[14, 20] == 1 and mask[26, 20] == 1
    assert mask[5, 20] == 0 and mask[35, 20] == 0 and mask[20, 5] == 0
    assert set(np.unique(landmarks_to_mask(landmarks, (40, 40)))) == {0, 1}


def test_heatmap_round_trip_is_subpixel():
    points = np.array([[5.3, 7.6], [20.0, 3.2], [11.5, 30.25]])
    heatmaps = landmarks_to_heatmaps(points, (40, 32), sigma=1.5)
    assert heatmaps.shape == (3, 40, 32) and heatmaps.max() <= 1.0
    assert heatmaps[1, 3, 20] == pytest.approx(np.exp(-(0.2**2) / (2 * 1.5**2)), rel=1e-5)
    np.testing.assert_allclose(heatmaps_to_landmarks(heatmaps, radius=3), points, atol=0.15)


def test_box_frame_round_trip_and_centres():
    box = [10, 20, 30, 60]
    points = np.array([[10, 20], [30, 60], [20, 40]])
    np.testing.assert_allclose(to_box_frame(points, box), [[0, 0], [1, 1], [0.5, 0.5]])
    np.testing.assert_allclose(from_box_frame(to_box_frame(points, box), box), points)
    np.testing.assert_allclose(vertebra_centres(_ladder(1)), [[20, 14]])
    with pytest.raises(ValueError, match=r"\(4·V, 2\)"):
        vertebra_centres(np.zeros((5, 2)))
