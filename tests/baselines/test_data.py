"""The AASCE data pipeline: reading with and without ground truth, errors, letterbox geometry, enhancement and
augmentation (checked against the official Cobb angles from evaluators.cobb)."""

import shutil

import numpy as np
import pandas as pd
import pytest

from baselines.data import (
    AasceDataError,
    Augmentation,
    angles_from_landmarks,
    augment,
    enhance,
    letterbox,
    prepare,
    read_cases,
)
from evaluators.cobb import cobb_angles
from tests.conftest import without_ground_truth


def test_read_cases_with_and_without_ground_truth(aasce_train, tmp_path):
    cases = read_cases(aasce_train, ground_truth=True)
    assert len(cases) == 12
    truth = pd.read_csv(aasce_train / "ground_truth" / "angles.csv", dtype={"case_id": str}).set_index("case_id")
    for case in cases:
        assert case.image.dtype == np.uint8 and case.landmarks.shape == (68, 2)
        np.testing.assert_allclose(case.angles, truth.loc[case.id, ["pt", "mt", "tl"]].to_numpy(float))
    copy = without_ground_truth(aasce_train, tmp_path / "inputs_only")
    blind = read_cases(copy, ground_truth=False)
    assert [c.id for c in blind] == [c.id for c in cases]
    assert all(c.landmarks is None and c.angles is None for c in blind)
    with pytest.raises(AasceDataError, match="landmarks.csv: missing ground-truth file"):
        read_cases(copy, ground_truth=True)


def test_bad_ground_truth_rows_are_named(aasce_train, tmp_path):
    copy = tmp_path / "bad"
    shutil.copytree(aasce_train, copy)
    path = copy / "ground_truth" / "angles.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[2, "mt"] = "abc"
    frame.to_csv(path, index=False)
    with pytest.raises(AasceDataError, match=r"angles.csv: row 4 \(case 'case_0003'\): column 'mt'"):
        read_cases(copy, ground_truth=True)
    frame.drop(index=2).assign(mt="1.0").to_csv(path, index=False)
    with pytest.raises(AasceDataError, match="angles.csv: no row for case 'case_0003'"):
        read_cases(copy, ground_truth=True)


def test_letterbox_maps_a_bright_pixel_and_inverts():
    image = np.zeros((60, 20), dtype=np.float32)
    image[45, 7] = 1.0
    resized, box = letterbox(image, (30, 30), order=0)
    assert resized.shape == (30, 30)
    row, col = np.unravel_index(np.argmax(resized), resized.shape)
    x, y = box.to_resized([[7, 45]])[0]
    assert abs(col - x) <= 0.5 and abs(row - y) <= 0.5
    assert resized[:, :10].max() == 0 and resized[:, 20:].max() == 0  # padding left and right, image centred
    points = np.array([[0.0, 0.0], [19.0, 59.0], [7.3, 12.9]])
    np.testing.assert_allclose(box.to_original(box.to_resized(points)), points)


def test_enhancement_spreads_a_low_contrast_image():
    rng = np.random.default_rng(0)
    image = (100 + 20 * rng.random((64, 32))).astype(np.uint8)
    plain = enhance(image, "none")
    assert plain.max() == pytest.approx(1.0) and plain.min() > 0.7
    for method in ("hist", "clahe"):
        out = enhance(image, method)
        assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
        assert out.std() > 3 * plain.std()
    with pytest.raises(ValueError, match="enhancement must be one of"):
        enhance(image, "gamma")


def test_augmentation_moves_landmarks_with_the_image(aasce_train):
    case = prepare(read_cases(aasce_train, ground_truth=True)[:1], size=(160, 80))[0]
    marked = np.zeros_like(case.image)
    x, y = np.round(case.landmarks[30]).astype(int)
    marked[y, x] = 1.0
    config = Augmentation(rotation_degrees=20, scale_range=(0.9, 1.1), translate_fraction=0.05, flip_horizontal=1.0)
    _, moved, (mask,) = augment(
        case.image, case.landmarks, config=config, rng=np.random.default_rng(3), extra=(marked,)
    )
    # the horizontal flip swaps left/right corners: landmark 31 (top-left of vertebra 8) becomes index 31 (top-right)
    row, col = np.argwhere(mask > 0)[0]
    assert np.hypot(moved[31, 0] - col, moved[31, 1] - row) <= 1.5
    corners = moved.reshape(17, 4, 2)
    assert (corners[:, 1, 0] > corners[:, 0, 0]).all()  # top-right still right of top-left
    # Cobb angles are invariant to rotation, scaling and mirroring
    np.testing.assert_allclose(angles_from_landmarks(moved, 160), cobb_angles(case.landmarks, 160), atol=0.5)


def test_vertical_flip_keeps_corner_meaning_and_noise_stays_in_range():
    rng = np.random.default_rng(0)
    landmarks = np.array([[10.0, 10 + 12 * v + dy] for v in range(17) for dy in (0, 0, 8, 8)])
    landmarks[1::2, 0] += 20  # right corners
    image = np.full((240, 40), 0.5, dtype=np.float32)
    out, moved, _ = augment(image, landmarks, config=Augmentation(flip_vertical=1.0, noise_sigma=0.2), rng=rng)
    corners = moved.reshape(17, 4, 2)
    assert (corners[:, 2, 1] > corners[:, 0, 1]).all()  # bottom below top
    assert (np.diff(corners[:, 0, 1]) > 0).all()  # vertebrae still ordered top to bottom
    assert out.min() >= 0 and out.max() <= 1 and out.std() > 0.1
