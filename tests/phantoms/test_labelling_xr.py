"""vertebra-labelling-xr generator: 24 centroids in the image's physical frame, on the bright spine."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

import phantoms
from phantoms.labelling_xr import LABELLED


def intensity_at(image, array, point, radius_mm=4.0):
    index = image.TransformPhysicalPointToContinuousIndex([float(v) for v in point])
    col, row = int(round(index[0])), int(round(index[1]))
    r = max(1, int(round(radius_mm / image.GetSpacing()[0])))
    patch = array[max(row - r, 0) : row + r + 1, max(col - r, 0) : col + r + 1]
    return float(patch.mean()) if patch.size else np.nan


@pytest.mark.slow
def test_centroids_are_ordered_inside_the_image_and_on_bone(tmp_path):
    out = phantoms.generate("vertebra-labelling-xr", out=tmp_path / "x", cases=4, seed=6, progress=False)
    brighter, total, views = 0, 0, set()
    for cid in ("case_0001", "case_0002", "case_0003", "case_0004"):
        image = sitk.ReadImage(str(out / "inputs" / cid / "image.nii.gz"))
        assert image.GetDimension() == 2 and 1.0 <= image.GetSpacing()[0] <= 2.0
        array = sitk.GetArrayFromImage(image).astype(float)
        view = json.loads((out / "inputs" / cid / "meta.json").read_text())["view"]
        views.add(view)
        centroids = json.loads((out / "ground_truth" / f"{cid}.json").read_text())["centroids"]
        assert list(centroids) == LABELLED
        ys = [centroids[name][1] for name in LABELLED]
        assert ys == sorted(ys)  # C1 at the top, L5 at the bottom (image y runs downwards)
        assert 400 < ys[-1] - ys[0] < 800  # a whole adult spine, in mm
        for name, point in centroids.items():
            index = image.TransformPhysicalPointToContinuousIndex(point)
            assert 0 <= index[0] < image.GetSize()[0] and 0 <= index[1] < image.GetSize()[1]
            if name.startswith("C"):
                continue  # the thin neck is seen against air: bright either way
            # the centroid sits on the vertebra: brighter than soft tissue 45 mm beside it (across the beam)
            side = max(intensity_at(image, array, (point[0] - 45, point[1])),
                       intensity_at(image, array, (point[0] + 45, point[1])))
            brighter += intensity_at(image, array, point) > side
            total += 1
    assert brighter / total > 0.85
    assert views and views <= {"coronal", "sagittal"}  # meta.json names a view the task knows (both occur: below)


def test_both_views_occur_and_small_images_are_small(tmp_path):
    out = phantoms.generate("vertebra-labelling-xr", out=tmp_path / "s", cases=6, seed=1, small=True,
                            progress=False)
    views = {json.loads((out / "inputs" / f"case_000{i}" / "meta.json").read_text())["view"] for i in range(1, 7)}
    assert views == {"coronal", "sagittal"}
    image = sitk.ReadImage(str(out / "inputs" / "case_0001" / "image.nii.gz"))
    assert image.GetSize()[1] < 250
