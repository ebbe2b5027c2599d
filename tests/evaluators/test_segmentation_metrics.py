"""Dice, Concurrency and surface distances against MedPy 0.5.2 (an independent reference) on random and anatomical
2D/3D shapes with anisotropic spacing, plus the empty-mask rules."""

import math

import numpy as np
import pytest
from medpy.metric.binary import asd as medpy_asd
from medpy.metric.binary import assd as medpy_assd
from medpy.metric.binary import dc as medpy_dc
from medpy.metric.binary import hd95 as medpy_hd95
from scipy import ndimage

from evaluators import metrics
from evaluators.metrics.surface import surface_voxels

RTOL = 1e-6


def blob(shape, rng, *, smoothing=2.0, level=0.55):
    """A random smooth blob (thresholded smoothed noise): irregular, several components, touching the border."""
    return ndimage.gaussian_filter(rng.random(shape), smoothing) > np.quantile(
        ndimage.gaussian_filter(rng.random(shape), smoothing), level
    )


def ellipsoid(shape, centre, radii):
    grid = np.indices(shape, dtype=np.float64)
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii)) <= 1.0


def vertebral_body(shape, centre, *, radius, height, canal_radius):
    """A cylinder (vertebral body) with a posterior ring around a hole (the canal): an anatomical 3D shape."""
    z, y, x = np.indices(shape, dtype=np.float64)
    body = ((y - centre[1]) ** 2 + (x - centre[2]) ** 2 <= radius**2) & (np.abs(z - centre[0]) <= height / 2)
    ring_y = centre[1] + 1.6 * radius
    ring = ((y - ring_y) ** 2 + (x - centre[2]) ** 2 <= (canal_radius + 3) ** 2) & (np.abs(z - centre[0]) <= height / 3)
    canal = (y - ring_y) ** 2 + (x - centre[2]) ** 2 <= canal_radius**2
    return (body | ring) & ~canal


def pairs():
    rng = np.random.default_rng(11)
    yield "random-2d", blob((60, 70), rng), blob((60, 70), rng), (0.7, 1.3)
    yield "random-3d", blob((24, 30, 28), rng), blob((24, 30, 28), rng), (2.5, 0.8, 0.8)
    shape = (40, 64, 64)
    yield (
        "vertebra-3d",
        vertebral_body(shape, (20, 22, 32), radius=12, height=20, canal_radius=5),
        vertebral_body(shape, (21, 23, 30), radius=11, height=22, canal_radius=6),
        (1.0, 0.8, 0.8),
    )
    yield (
        "ellipses-2d",
        ellipsoid((80, 90), (40, 45), (25, 30)),
        ellipsoid((80, 90), (43, 40), (20, 33)),
        (0.5, 0.9),
    )
    yield (
        "border-touching-3d",
        ellipsoid((20, 30, 30), (0, 15, 15), (8, 12, 14)),
        ellipsoid((20, 30, 30), (2, 14, 17), (9, 10, 14)),
        (3.0, 0.6, 0.7),
    )


@pytest.mark.parametrize(("name", "reference", "prediction", "spacing"), list(pairs()), ids=[p[0] for p in pairs()])
def test_binary_metrics_equal_medpy(name, reference, prediction, spacing):
    assert metrics.dice(reference, prediction) == pytest.approx(medpy_dc(prediction, reference), rel=1e-12)
    distances = metrics.surface_distances(reference, prediction, spacing=spacing)
    assert distances.assd == pytest.approx(medpy_assd(prediction, reference, voxelspacing=spacing), rel=RTOL)
    assert distances.hd95 == pytest.approx(medpy_hd95(prediction, reference, voxelspacing=spacing), rel=RTOL)
    to_reference = medpy_asd(prediction, reference, voxelspacing=spacing)
    to_prediction = medpy_asd(reference, prediction, voxelspacing=spacing)
    assert distances.mean_prediction_to_reference == pytest.approx(to_reference, rel=RTOL)
    assert distances.mean_reference_to_prediction == pytest.approx(to_prediction, rel=RTOL)
    assert distances.masd == pytest.approx((to_reference + to_prediction) / 2, rel=RTOL)
    assert metrics.assd(reference, prediction, spacing=spacing) == distances.assd
    assert metrics.hd95(reference, prediction, spacing=spacing) == distances.hd95


def test_voxel_units_ignore_spacing():
    _, reference, prediction, spacing = list(pairs())[2]
    in_voxels = metrics.assd(reference, prediction, spacing=spacing, units="voxels")
    assert in_voxels == pytest.approx(medpy_assd(prediction, reference), rel=RTOL)
    assert in_voxels != pytest.approx(metrics.assd(reference, prediction, spacing=spacing), rel=1e-3)


def test_multilabel_per_label_equals_medpy():
    rng = np.random.default_rng(5)
    shape = (30, 40, 36)
    reference = np.zeros(shape, np.uint8)
    prediction = np.zeros(shape, np.uint8)
    for label, (centre, radii) in enumerate(
        [((8, 12, 10), (5, 8, 7)), ((20, 25, 20), (6, 9, 10)), ((15, 30, 28), (4, 5, 6))], start=1
    ):
        reference[ellipsoid(shape, centre, radii)] = label
        shifted = tuple(c + rng.integers(-2, 3) for c in centre)
        prediction[ellipsoid(shape, shifted, tuple(r + rng.integers(-1, 2) for r in radii))] = label
    spacing = (2.0, 0.75, 0.9)
    labels = [1, 2, 3]
    dice = metrics.dice(reference, prediction, labels=labels)
    concurrency = metrics.concurrency(reference, prediction, labels=labels)
    distances = metrics.surface_distances(reference, prediction, spacing=spacing, labels=labels)
    for label in labels:
        r, p = reference == label, prediction == label
        assert dice[label] == pytest.approx(medpy_dc(p, r), rel=1e-12)
        overlap = np.sum(r & p)
        assert concurrency[label] == pytest.approx(0.5 * (overlap / r.sum() + overlap / p.sum()), rel=1e-12)
        assert distances[label].assd == pytest.approx(medpy_assd(p, r, voxelspacing=spacing), rel=RTOL)
        assert distances[label].hd95 == pytest.approx(medpy_hd95(p, r, voxelspacing=spacing), rel=RTOL)


def test_surface_is_mask_minus_face_connected_erosion_with_border_as_surface():
    rng = np.random.default_rng(2)
    mask = blob((15, 16, 17), rng)
    expected = mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1), border_value=0)
    np.testing.assert_array_equal(surface_voxels(mask), expected)


def test_empty_mask_rules():
    empty = np.zeros((10, 10), bool)
    square = empty.copy()
    square[2:6, 3:8] = True
    assert metrics.dice(empty, empty) == 1.0
    assert metrics.concurrency(empty, empty) == 1.0
    assert metrics.dice(square, empty) == 0.0 and metrics.dice(empty, square) == 0.0
    assert metrics.concurrency(square, empty) == 0.0
    both_empty = metrics.surface_distances(empty, empty, spacing=1.0)
    assert (both_empty.assd, both_empty.masd, both_empty.hd95) == (0.0, 0.0, 0.0)
    one_empty = metrics.surface_distances(square, empty, spacing=1.0)
    assert all(math.isnan(v) for v in (one_empty.assd, one_empty.masd, one_empty.hd95))
    per_label = metrics.dice(square.astype(np.uint8), square.astype(np.uint8), labels=[1, 2])
    assert per_label == {1: 1.0, 2: 1.0}  # label 2 absent from both: 1.0


def test_concurrency_hand_worked():
    reference = np.zeros((4, 4), bool)
    prediction = np.zeros((4, 4), bool)
    reference[0, :4] = True  # 4 voxels
    prediction[0, :2] = True  # 2 voxels, both inside
    assert metrics.concurrency(reference, prediction) == pytest.approx(0.5 * (2 / 4 + 2 / 2))
    assert metrics.dice(reference, prediction) == pytest.approx(2 * 2 / 6)


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="prediction: shape"):
        metrics.dice(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="spacing"):
        metrics.assd(np.ones((3, 3)), np.ones((3, 3)), spacing=(1.0, -1.0))
    with pytest.raises(ValueError, match="units"):
        metrics.assd(np.ones((3, 3)), np.ones((3, 3)), spacing=1.0, units="cm")
    with pytest.raises(ValueError, match="labels"):
        metrics.dice(np.ones((3, 3), np.uint8), np.ones((3, 3), np.uint8), labels=[0, 1])
