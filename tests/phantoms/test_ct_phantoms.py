"""CT generators: the ground truth read back from the image (HU inside each label, cortex around the centrum,
fracture heights measured on the label map), group transforms, fracture prevalence."""

import json

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_dilation

import phantoms
from evaluators.layout import VERTEBRA_LABELS
from phantoms import ct, fracture
from phantoms.common import case_rng


def read(path):
    image = sitk.ReadImage(str(path))
    return image, sitk.GetArrayFromImage(image)


def physical_centroid(image, mask):
    zyx = np.argwhere(mask).mean(axis=0)
    return np.asarray(image.TransformContinuousIndexToPhysicalPoint([float(v) for v in zyx[::-1]]))


@pytest.fixture(scope="module")
def metastatic_test(tmp_path_factory):
    return phantoms.generate("metastatic-body-ct", out=tmp_path_factory.mktemp("met") / "m", cases=2, seed=3,
                             domain="test", progress=False)


def test_metastatic_patch_geometry_and_centrum_inside_cortex(metastatic_test):
    image, hu = read(metastatic_test / "inputs" / "case_0001_given" / "image.nii.gz")
    assert image.GetSize() == (128, 128, 64) and image.GetSpacing() == (1.0, 1.0, 1.0)
    mask_image, mask = read(metastatic_test / "ground_truth" / "case_0001_given.nii.gz")
    mask = mask.astype(bool)
    assert mask_image.GetSize() == image.GetSize() and mask.sum() > 3000
    ring = binary_dilation(mask, iterations=3) & ~mask
    # trabecular bone (with lesions) inside; the bright cortical shell just outside
    assert np.median(hu[mask]) < 450
    assert np.percentile(hu[ring], 90) > 450
    # the given patch is centred on the body
    centre_index = np.argwhere(mask).mean(axis=0)
    assert np.all(np.abs(centre_index - (np.array(hu.shape) - 1) / 2) < 4)


def test_metastatic_groups_move_the_mask_with_the_anatomy(metastatic_test):
    given_image, given = read(metastatic_test / "ground_truth" / "case_0002_given.nii.gz")
    moved_image, moved = read(metastatic_test / "ground_truth" / "case_0002_translated.nii.gz")
    resampled_image, resampled = read(metastatic_test / "ground_truth" / "case_0002_resampled.nii.gz")
    # same anatomy: the centrum sits at the same physical place, at another voxel position when translated
    np.testing.assert_allclose(physical_centroid(given_image, given > 0), physical_centroid(moved_image, moved > 0),
                               atol=1.0)
    assert np.abs(np.array(given_image.GetOrigin()) - np.array(moved_image.GetOrigin())).max() > 2.0
    # the R condition degrades the image only: the ground truth is the given mask, voxel for voxel (Klein et al.)
    assert resampled_image.GetSpacing() == given_image.GetSpacing()
    assert resampled_image.GetOrigin() == given_image.GetOrigin()
    np.testing.assert_array_equal(resampled, given)
    # and the resampled image is blurrier: smaller voxel-to-voxel differences inside the body
    _, hu_given = read(metastatic_test / "inputs" / "case_0002_given" / "image.nii.gz")
    _, hu_resampled = read(metastatic_test / "inputs" / "case_0002_resampled" / "image.nii.gz")
    inside = given > 0
    rough = lambda a: np.abs(np.diff(a.astype(float), axis=2))[inside[:, :, 1:]].mean()  # noqa: E731
    assert rough(hu_resampled) < rough(hu_given)


def test_lumbosacral_labels_sit_on_their_structures(tmp_path):
    out = phantoms.generate("lumbosacral-ct", out=tmp_path / "l", cases=2, seed=2, small=True, domain="test",
                            progress=False)
    for cid in ("case_0001", "case_0002"):
        image, hu = read(out / "inputs" / cid / "image.nii.gz")
        assert image.GetSpacing() == pytest.approx((2.0, 2.0, 4.0))
        _, labels = read(out / "ground_truth" / f"{cid}.nii.gz")
        assert set(np.unique(labels)) == {0, 1, 2, 3}
        bone, disc, nerve = (np.median(hu[labels == k]) for k in (1, 2, 3))
        assert bone > 250 and 40 < disc < 220 and -60 < nerve < 110
        assert bone > disc > nerve


@pytest.mark.slow
def test_lumbosacral_full_resolution_spacing_and_nerves_leave_the_canal():
    image, labels = phantoms.lumbosacral.make_case(case_rng(0, "lumbosacral-ct", 0), group="in-domain",
                                                   small=False)
    assert image.GetSpacing() == (0.5, 0.5, 1.0)
    array = sitk.GetArrayFromImage(labels)
    nerve = np.argwhere(array == 3)
    bone_x = np.argwhere(array == 1)[:, 2]
    # roots on both sides of the midline, reaching lateral to most of the bone
    mid = np.median(bone_x)
    assert (nerve[:, 2] < mid - 20).any() and (nerve[:, 2] > mid + 20).any()


def test_fracture_prevalence_matches_the_population():
    names = ct.ORDER[ct.ORDER.index("T6") : ct.ORDER.index("L4") + 1]
    grades, patients_without = [], 0
    for index in range(600):
        rng = case_rng(9, "fracture-ct", index)
        found = fracture.sample_fractures(rng, names, float(rng.beta(1.6, 2.4)))
        grades += [g for g, _, _ in found.values()]
        patients_without += not found
    vertebra_rate = len(grades) / (600 * len(names))
    assert 0.15 < vertebra_rate < 0.25
    assert 0.05 < patients_without / 600 < 0.2
    assert set(grades) == {1, 2, 3}


GENANT_RANGE = {0: (0.0, 0.1), 1: (0.2, 0.25), 2: (0.25, 0.4), 3: (0.4, 1.0)}


def body_heights(shape, loss, grade):
    """Column heights (mm) of L2's label over the central 90 % of its endplate, rendered at 0.5 mm."""
    rng = np.random.default_rng(0)
    params = ct.SpineParams(scoliosis=0.0, kyphosis=0.0)
    spine = ct.build_spine(rng, ["L1", "L2", "L3"], params=params, anchor=np.zeros(3), anchor_level="L2",
                           fractures={"L2": (grade, shape, loss)} if grade else {"L2": (0, "normal", 0.0)})
    v = ct.Vertebra(**{**spine[1].__dict__, "axes": np.eye(3)})
    grid = ct.Grid(shape=(80, 100, 100), spacing=(0.5, 0.5, 0.5), origin=(-25.0, -25.0, -20.0))
    layers = ct.render(grid, [v], rng, background=np.zeros(grid.shape, np.float32), ribs=False)
    body = layers.vertebra == VERTEBRA_LABELS["L2"]
    xx, yy = np.meshgrid(np.arange(100) * 0.5 - 25.0, np.arange(100) * 0.5 - 25.0)
    footprint = (xx / v.half_width) ** 2 + (yy / v.half_depth) ** 2 < 0.9**2
    assert np.median(layers.hu[body]) > 150  # the image agrees: bone where the label is
    return body.sum(axis=0)[footprint] * 0.5, yy[footprint] / v.half_depth


@pytest.mark.parametrize("shape,loss,grade", [("wedge", 0.32, 2), ("biconcave", 0.23, 1), ("crush", 0.5, 3),
                                              ("normal", 0.0, 0)])
def test_fractured_vertebra_measured_height_loss_is_in_its_grade_range(shape, loss, grade):
    """Measured on the label map against the same vertebra unfractured, column by column, as Genant's reading
    compares a vertebra's heights with its expected height."""
    heights, yn = body_heights(shape, loss, grade)
    twin, _ = body_heights("normal", 0.0, 0)
    ratio = heights / np.maximum(twin, 1e-6)
    measured = 1.0 - ratio.min()
    low, high = GENANT_RANGE[grade]
    assert low - 0.03 <= measured <= high + 0.03, measured
    if shape == "wedge":  # the anterior rim (-y) collapses, the posterior one keeps its height
        assert ratio[yn < -0.6].mean() < ratio[yn > 0.6].mean() - 0.15
    if shape == "biconcave":
        assert ratio[np.abs(yn) < 0.2].mean() < ratio[np.abs(yn) > 0.7].mean() - 0.08


def test_fracture_dataset_inputs_and_ground_truth_agree(tmp_path):
    out = phantoms.generate("fracture-ct", out=tmp_path / "f", cases=2, seed=4, small=True, progress=False)
    table = pd.read_csv(out / "ground_truth" / "vertebrae.csv")
    assert list(table.columns) == ["case_id", "vertebra", "grade", "shape"]
    assert set(table["grade"]) <= {0, 1, 2, 3}
    for cid, rows in table.groupby("case_id"):
        image, hu = read(out / "inputs" / cid / "image.nii.gz")
        assert image.GetSpacing()[2] > image.GetSpacing()[0]  # anisotropic
        label_image, labels = read(out / "inputs" / cid / "vertebrae.nii.gz")
        centroids = json.loads((out / "inputs" / cid / "centroids.json").read_text())
        assert list(centroids) == list(rows["vertebra"])
        assert {VERTEBRA_LABELS[n] for n in centroids} == set(np.unique(labels)) - {0}
        zs = [centroids[n][2] for n in rows["vertebra"]]
        assert zs == sorted(zs, reverse=True)  # top to bottom
        for name, point in centroids.items():
            np.testing.assert_allclose(physical_centroid(label_image, labels == VERTEBRA_LABELS[name]), point,
                                       atol=0.02)
        assert np.median(hu[labels > 0]) > 150
        for row in rows.itertuples():
            assert (row.grade == 0) == (row.shape == "normal")


def test_coarser_scan_removes_detail_finer_than_its_voxels_and_keeps_coarser_structure():
    from phantoms.metastatic import coarser_scan

    x = np.arange(64)
    fine = np.broadcast_to(100.0 * np.cos(np.pi * x), (16, 16, 64))  # period 2 mm: unresolvable by 2 mm voxels
    coarse = np.broadcast_to(100.0 * np.cos(2 * np.pi * x / 32), (16, 16, 64))  # period 32 mm
    amplitude = lambda a: np.abs(a[8, 8, 16:48]).max()  # noqa: E731 - away from the edges
    assert amplitude(coarser_scan(fine, spacing=(1.0, 1.0, 1.0), voxel_mm=2.0)) < 0.2 * 100
    assert amplitude(coarser_scan(coarse, spacing=(1.0, 1.0, 1.0), voxel_mm=2.0)) > 0.9 * 100
    # a scanner no finer than the grid changes nothing
    np.testing.assert_array_equal(coarser_scan(fine, spacing=(1.5, 1.5, 1.5), voxel_mm=1.2), fine)
