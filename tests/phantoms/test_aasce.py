"""aasce-cobb generator: layout, ground truth read back from the image, angle distribution, test domain."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.draw import polygon

import phantoms
from evaluators.cobb import cobb_angles
from evaluators.layout import read_manifest
from phantoms import aasce
from phantoms.common import case_rng


@pytest.fixture(scope="module")
def train_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("aasce") / "train"
    return phantoms.generate("aasce-cobb", out=out, cases=3, seed=7, progress=False)


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_layout_and_sizes(train_set):
    manifest = read_manifest(train_set)
    assert manifest.task == "aasce-cobb" and manifest.split == "train" and manifest.seed == 7
    assert manifest.case_ids == ["case_0001", "case_0002", "case_0003"]
    landmarks = pd.read_csv(train_set / "ground_truth" / "landmarks.csv")
    assert list(landmarks.columns[:3]) == ["case_id", "image_height", "image_width"]
    assert list(landmarks.columns[3:]) == [f"x{i}" for i in range(1, 69)] + [f"y{i}" for i in range(1, 69)]
    angles = pd.read_csv(train_set / "ground_truth" / "angles.csv")
    assert list(angles.columns) == ["case_id", "pt", "mt", "tl"]
    for row in landmarks.itertuples(index=False):
        image = Image.open(train_set / "inputs" / row.case_id / "image.png")
        assert image.mode == "L" and image.size == (row.image_width, row.image_height)
        assert 1000 <= row.image_height <= 3000
    assert (train_set / "preview.png").is_file()


def test_angles_are_the_official_algorithm_on_the_landmarks(train_set):
    landmarks = pd.read_csv(train_set / "ground_truth" / "landmarks.csv").set_index("case_id")
    angles = pd.read_csv(train_set / "ground_truth" / "angles.csv").set_index("case_id")
    for cid, row in landmarks.iterrows():
        points = np.stack([row[[f"x{i}" for i in range(1, 69)]], row[[f"y{i}" for i in range(1, 69)]]], axis=1)
        expected = cobb_angles(points.astype(float), row["image_height"])
        np.testing.assert_allclose(angles.loc[cid, ["pt", "mt", "tl"]].to_numpy(float), expected, atol=0.05)


def region_mean(image, corners):
    rows, cols = polygon(corners[:, 1], corners[:, 0], shape=image.shape)
    assert rows.size > 0
    return image[rows, cols].mean()


def test_vertebra_quadrilaterals_are_brighter_than_the_disc_gaps(train_set):
    """Read the ground truth back from the image: each landmark quadrilateral is bone, each gap between the lower
    endplate of one vertebra and the upper endplate of the next is darker."""
    landmarks = pd.read_csv(train_set / "ground_truth" / "landmarks.csv")
    for row in landmarks.itertuples(index=False):
        image = np.asarray(Image.open(train_set / "inputs" / row.case_id / "image.png"), dtype=np.float64)
        values = np.asarray(row[3:], dtype=float)
        points = np.stack([values[:68], values[68:]], axis=1).reshape(17, 4, 2)
        for v in range(16):
            tl, tr, bl, br = points[v]
            body = region_mean(image, np.array([tl, tr, br, bl]))
            ntl, ntr = points[v + 1][:2]
            # the central 60 % of the gap, shrunk vertically so blur from the endplates does not dominate
            lo_l, lo_r = bl + 0.35 * (ntl - bl), br + 0.35 * (ntr - br)
            hi_l, hi_r = bl + 0.65 * (ntl - bl), br + 0.65 * (ntr - br)
            shrink = lambda a, b: (a + 0.2 * (b - a), b - 0.2 * (b - a))  # noqa: E731
            (lo_l, lo_r), (hi_l, hi_r) = shrink(lo_l, lo_r), shrink(hi_l, hi_r)
            gap = region_mean(image, np.array([lo_l, lo_r, hi_r, hi_l]))
            assert body > gap + 3, (row.case_id, v, body, gap)


def test_generation_is_byte_identical_per_seed(tmp_path):
    first = phantoms.generate("aasce-cobb", out=tmp_path / "a", cases=2, seed=3, small=True, progress=False)
    second = phantoms.generate("aasce-cobb", out=tmp_path / "b", cases=2, seed=3, small=True, progress=False)
    other = phantoms.generate("aasce-cobb", out=tmp_path / "c", cases=2, seed=4, small=True, progress=False)
    assert digest(first) == digest(second)
    assert digest(first)["inputs/case_0001/image.png"] != digest(other)["inputs/case_0001/image.png"]
    assert Image.open(first / "inputs" / "case_0001" / "image.png").size[1] <= 320


def test_cobb_angles_cover_0_to_90_with_many_small_angles():
    """Geometry only (no rendering): the main angle's distribution over 400 spines spans the clinical range and is
    right-skewed like a scoliosis clinic's population."""
    pt = []
    kinds = []
    for index in range(400):
        spine = aasce.sample_spine(case_rng(11, "aasce-cobb", index))
        pt.append(cobb_angles(spine.corners_mm.reshape(68, 2), 1e4)[0])
        kinds.append(spine.curve.kind)
    pt = np.asarray(pt)
    counts, _ = np.histogram(pt, bins=[0, 10, 20, 40, 60, 90])
    assert np.all(counts > 0), counts
    assert pt.max() < 95 and pt.max() > 65
    assert np.mean(pt < 20) > 0.3 and np.mean(pt < 10) > 0.1
    assert 10 < np.median(pt) < 30
    assert set(kinds) == {"straight", "C", "S"}


def test_c_curve_angle_matches_its_sampled_bend():
    """A single tanh step of a degrees bends the tangent by about a, so the official PT is close to it."""
    from phantoms.curves import Curve, centreline, quad_corners

    heights, widths, gaps = np.full(17, 20.0), np.full(17, 40.0), np.full(16, 6.0)
    for bend in (5.0, 30.0, 60.0):
        curve = Curve(kind="C", tilt=0.0, steps=((bend, 0.5, 0.08),))
        centres, angles = centreline(heights=heights, gaps=gaps, angle_deg=curve.angle)
        corners = quad_corners(centres, angles, widths, heights)
        assert cobb_angles(corners.reshape(68, 2), 1e4)[0] == pytest.approx(bend, rel=0.08)


def test_test_domain_has_a_wider_field_of_view_and_other_contrast(tmp_path):
    train = phantoms.generate("aasce-cobb", out=tmp_path / "tr", cases=2, seed=1, small=True, progress=False)
    test = phantoms.generate("aasce-cobb", out=tmp_path / "te", cases=2, seed=1, small=True, domain="test",
                             progress=False)
    assert read_manifest(test).split == "test"

    def spans(folder):
        frame = pd.read_csv(folder / "ground_truth" / "landmarks.csv")
        ys = frame[[f"y{i}" for i in range(1, 69)]].to_numpy()
        return (ys.max(axis=1) - ys.min(axis=1)) / frame["image_height"].to_numpy(), ys.min(axis=1) / frame[
            "image_height"].to_numpy()

    train_span, train_top = spans(train)
    test_span, test_top = spans(test)
    assert train_span.min() > 0.7 and test_span.max() < 0.6
    assert test_top.min() > 0.15  # room for the skull and shoulders above T1
