"""Importers: the generated public layouts load back to the generator's own ground truth; bad input is refused
with the file and the problem named, and nothing partial is left behind; a real DICOM radiograph is read."""

import json

import numpy as np
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom.data import get_testdata_file

import phantoms
from evaluators.layout import read_manifest
from phantoms.importers import ImportDatasetError, import_dataset


@pytest.fixture(scope="module")
def aasce_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("aasce")
    native = phantoms.generate("aasce-cobb", out=root / "native", cases=3, seed=8, small=True, progress=False)
    public = phantoms.generate("aasce-cobb", out=root / "public", cases=3, seed=8, small=True, layout="spineweb16",
                               progress=False)
    return native, public


@pytest.fixture(scope="module")
def verse_pair(tmp_path_factory):
    root = tmp_path_factory.mktemp("verse")
    native = phantoms.generate("fracture-ct", out=root / "native", cases=2, seed=8, small=True, progress=False)
    public = phantoms.generate("fracture-ct", out=root / "public", cases=2, seed=8, small=True, layout="verse",
                               progress=False)
    return native, public


def test_spineweb16_layout_imports_to_the_generated_ground_truth(aasce_pair, tmp_path):
    native, public = aasce_pair
    assert sorted(p.name for p in (public / "labels" / "training").iterdir()) == [
        "angles.csv", "filenames.csv", "landmarks.csv"]
    assert pd.read_csv(public / "labels" / "training" / "landmarks.csv", header=None).shape == (3, 136)
    manifest = import_dataset("spineweb16", public, tmp_path / "imported", task="aasce-cobb", split="train")
    assert manifest.source == "imported" and read_manifest(tmp_path / "imported").case_ids == manifest.case_ids
    got = pd.read_csv(tmp_path / "imported" / "ground_truth" / "landmarks.csv")
    want = pd.read_csv(native / "ground_truth" / "landmarks.csv")
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(float), want.iloc[:, 1:].to_numpy(float), atol=2e-3)
    np.testing.assert_allclose(pd.read_csv(tmp_path / "imported" / "ground_truth" / "angles.csv").iloc[:, 1:],
                               pd.read_csv(native / "ground_truth" / "angles.csv").iloc[:, 1:], atol=1e-3)
    for imported_id, native_id in zip(manifest.case_ids, read_manifest(native).case_ids):
        a = np.asarray(Image.open(tmp_path / "imported" / "inputs" / imported_id / "image.png"), float)
        b = np.asarray(Image.open(native / "inputs" / native_id / "image.png"), float)
        assert a.shape == b.shape and np.abs(a - b).mean() < 3.0  # JPEG round trip


def test_spineweb16_without_angles_computes_them_from_the_landmarks(aasce_pair, tmp_path):
    native, public = aasce_pair
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(public, copy)
    (copy / "labels" / "training" / "angles.csv").unlink()
    import_dataset("spineweb16", copy, tmp_path / "imported", task="aasce-cobb", split="train")
    np.testing.assert_allclose(pd.read_csv(tmp_path / "imported" / "ground_truth" / "angles.csv").iloc[:, 1:],
                               pd.read_csv(native / "ground_truth" / "angles.csv").iloc[:, 1:], atol=0.05)


def refused(match, layout, src, dst, **kwargs):
    with pytest.raises(ImportDatasetError, match=match):
        import_dataset(layout, src, dst, **kwargs)
    assert not dst.exists()
    assert not [p for p in dst.parent.iterdir() if ".importing-" in p.name]


def test_spineweb16_refusals_name_the_file_and_leave_nothing(aasce_pair, tmp_path):
    import shutil

    _, public = aasce_pair
    labels = lambda root: root / "labels" / "training"  # noqa: E731
    missing = tmp_path / "missing"
    shutil.copytree(public, missing)
    (labels(missing) / "landmarks.csv").unlink()
    refused(r"landmarks\.csv: missing label file", "spineweb16", missing, tmp_path / "out1", task="aasce-cobb",
            split="train")

    columns = tmp_path / "columns"
    shutil.copytree(public, columns)
    frame = pd.read_csv(labels(columns) / "landmarks.csv", header=None)
    frame.iloc[:, :134].to_csv(labels(columns) / "landmarks.csv", header=False, index=False)
    refused(r"landmarks\.csv: expected 136 columns per row, got 134", "spineweb16", columns, tmp_path / "out2",
            task="aasce-cobb", split="train")

    broken = tmp_path / "broken"
    shutil.copytree(public, broken)
    (broken / "data" / "training" / "sunhl-1th-0002.jpg").write_bytes(b"not a jpeg")
    refused(r"sunhl-1th-0002\.jpg: image unreadable", "spineweb16", broken, tmp_path / "out3", task="aasce-cobb",
            split="train")

    refused(r"holds data for aasce-cobb, not 'fracture-ct'", "spineweb16", public, tmp_path / "out4",
            task="fracture-ct", split="train")


def test_verse_layout_imports_to_the_generated_ground_truth(verse_pair, tmp_path):
    native, public = verse_pair
    manifest = import_dataset("verse", public, tmp_path / "imported", task="fracture-ct", split="test")
    assert manifest.case_ids == ["sub-verse001", "sub-verse002"] and manifest.split == "test"
    got = pd.read_csv(tmp_path / "imported" / "ground_truth" / "vertebrae.csv")
    want = pd.read_csv(native / "ground_truth" / "vertebrae.csv")
    assert got[["vertebra", "grade", "shape"]].values.tolist() == want[["vertebra", "grade", "shape"]].values.tolist()
    for imported_id, native_id in zip(manifest.case_ids, ["case_0001", "case_0002"]):
        a = json.loads((tmp_path / "imported" / "inputs" / imported_id / "centroids.json").read_text())
        b = json.loads((native / "inputs" / native_id / "centroids.json").read_text())
        assert list(a) == list(b)
        np.testing.assert_allclose([a[k] for k in a], [b[k] for k in a], atol=0.02)
        image = sitk.ReadImage(str(tmp_path / "imported" / "inputs" / imported_id / "image.nii.gz"))
        reference = sitk.ReadImage(str(native / "inputs" / native_id / "image.nii.gz"))
        assert np.array_equal(sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(reference))


def test_verse_centroids_in_another_axis_order_are_converted(verse_pair, tmp_path):
    """A centroid file written for the image reoriented to I-A-R (z flipped, y flipped, x flipped, permuted)."""
    import shutil

    native, public = verse_pair
    copy = tmp_path / "copy"
    shutil.copytree(public, copy)
    ctd = copy / "derivatives" / "sub-verse001" / "sub-verse001_seg-subreg_ctd.json"
    image = sitk.ReadImage(str(copy / "rawdata" / "sub-verse001" / "sub-verse001_ct.nii.gz"))
    size = image.GetSize()
    entries = json.loads(ctd.read_text())
    flipped = [{"direction": ["I", "A", "R"]}] + [
        {"label": e["label"], "X": size[2] - 1 - e["Z"], "Y": size[1] - 1 - e["Y"], "Z": size[0] - 1 - e["X"]}
        for e in entries[1:]]
    ctd.write_text(json.dumps(flipped))
    import_dataset("verse", copy, tmp_path / "imported", task="fracture-ct", split="train")
    a = json.loads((tmp_path / "imported" / "inputs" / "sub-verse001" / "centroids.json").read_text())
    b = json.loads((native / "inputs" / "case_0001" / "centroids.json").read_text())
    np.testing.assert_allclose([a[k] for k in b], [b[k] for k in b], atol=0.02)


def test_verse_refusals(verse_pair, tmp_path):
    import shutil

    _, public = verse_pair
    mismatch = tmp_path / "mismatch"
    shutil.copytree(public, mismatch)
    mask_path = mismatch / "derivatives" / "sub-verse002" / "sub-verse002_seg-vert_msk.nii.gz"
    mask = sitk.ReadImage(str(mask_path))
    mask.SetSpacing([s * 2 for s in mask.GetSpacing()])
    sitk.WriteImage(mask, str(mask_path))
    refused(r"sub-verse002_seg-vert_msk\.nii\.gz: geometry mismatch", "verse", mismatch, tmp_path / "o1",
            task="fracture-ct", split="train")

    no_grades = tmp_path / "no_grades"
    shutil.copytree(public, no_grades)
    (no_grades / "fracture_grades.csv").unlink()
    refused(r"fracture_grades\.csv: missing label file", "verse", no_grades, tmp_path / "o2", task="fracture-ct",
            split="train")

    no_mask = tmp_path / "no_mask"
    shutil.copytree(public, no_mask)
    (no_mask / "derivatives" / "sub-verse001" / "sub-verse001_seg-vert_msk.nii.gz").unlink()
    refused(r"sub-verse001_seg-vert_msk\.nii\.gz: missing label file", "verse", no_mask, tmp_path / "o3",
            task="fracture-ct", split="train")


@pytest.mark.slow
def test_single_dicom_radiograph_imports_for_both_radiograph_tasks(tmp_path):
    path = get_testdata_file("RG1_UNCR.dcm")
    dataset = pydicom.dcmread(path)  # independent reader: raw stored values
    reference = dataset.pixel_array.astype(float)
    assert dataset.PhotometricInterpretation == "MONOCHROME1"  # high values dark: the import flips it to bone-bright
    reference = (2 ** dataset.BitsStored - 1) - reference
    import_dataset("image", path, tmp_path / "xr", task="vertebra-labelling-xr", split="test")
    image = sitk.ReadImage(str(tmp_path / "xr" / "inputs" / "RG1_UNCR" / "image.nii.gz"))
    assert image.GetDimension() == 2
    assert np.array_equal(sitk.GetArrayFromImage(image).astype(float), reference)
    assert json.loads((tmp_path / "xr" / "inputs" / "RG1_UNCR" / "meta.json").read_text()) == {"view": "coronal"}
    import_dataset("image", path, tmp_path / "ap", task="aasce-cobb", split="test")
    png = np.asarray(Image.open(tmp_path / "ap" / "inputs" / "RG1_UNCR" / "image.png"), float)
    assert png.shape == reference.shape and png.min() == 0 and png.max() == 255
    assert np.corrcoef(png.ravel(), reference.ravel())[0, 1] > 0.999
    refused(
        r"metastatic-body-ct needs a 3D image, got a single slice",
        "image",
        path,
        tmp_path / "ct",
        task="metastatic-body-ct",
        split="test",
    )


def test_dicom_series_folder_imports_as_one_volume(tmp_path):
    volume = (np.arange(4 * 8 * 10, dtype=np.int16).reshape(4, 8, 10) - 100)
    folder = tmp_path / "series"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(4):
        slice_image = sitk.GetImageFromArray(volume[k])
        slice_image.SetSpacing((0.5, 0.5))
        for tag, value in {"0008|0060": "CT", "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
                           "0020|000e": "1.2.826.0.1.3680043.2.1125.2", "0020|0037": "1\\0\\0\\0\\1\\0",
                           "0020|0032": f"0\\0\\{k * 1.0}", "0020|0013": str(k + 1), "0028|0030": "0.5\\0.5",
                           "0018|0050": "1.0"}.items():
            slice_image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{k}.dcm"))
        writer.Execute(slice_image)
    manifest = import_dataset("dicom-series", folder, tmp_path / "ds", task="lumbosacral-ct", split="test")
    assert len(manifest.cases) == 1
    image = sitk.ReadImage(str(tmp_path / "ds" / "inputs" / manifest.case_ids[0] / "image.nii.gz"))
    assert image.GetSize() == (10, 8, 4)
    assert image.GetSpacing() == pytest.approx((0.5, 0.5, 1.0))
    assert np.array_equal(sitk.GetArrayFromImage(image), volume)


def test_generic_refusals(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    with pytest.raises(ImportDatasetError, match="already exists and is not empty"):
        import_dataset("image", tmp_path / "taken" / "file", tmp_path / "taken", task="aasce-cobb", split="train")
    with pytest.raises(ImportDatasetError, match="unknown layout 'nifti'"):
        import_dataset("nifti", tmp_path, tmp_path / "x", task="aasce-cobb", split="train")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    refused(r"bad\.png: image unreadable", "image", bad, tmp_path / "y", task="aasce-cobb", split="train")
    refused(r"use the verse layout", "image", bad, tmp_path / "z", task="fracture-ct", split="train")
