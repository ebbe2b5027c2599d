"""fracture-ct's `fracture_free` option: an evenly spread share of patients without fracture, the rest unchanged."""

import filecmp

import pandas as pd
import pytest
import SimpleITK as sitk

import phantoms
from phantoms import fracture


def test_forced_indices_are_spread_evenly():
    forced = [i for i in range(30) if fracture.forced_fracture_free(i, 1 / 3)]
    assert forced == list(range(2, 30, 3))
    assert sum(fracture.forced_fracture_free(i, 0.1) for i in range(90)) == 9
    assert not any(fracture.forced_fracture_free(i, 0.0) for i in range(50))
    assert all(fracture.forced_fracture_free(i, 1.0) for i in range(5))


def test_fracture_free_cases_keep_their_anatomy_and_lose_their_fractures(tmp_path):
    plain = phantoms.generate("fracture-ct", out=tmp_path / "plain", cases=3, seed=0, small=True, progress=False)
    free = phantoms.generate("fracture-ct", out=tmp_path / "free", cases=3, seed=0, small=True, progress=False,
                             fracture_free=1 / 3)
    grades_plain = pd.read_csv(plain / "ground_truth" / "vertebrae.csv", dtype={"case_id": str})
    grades_free = pd.read_csv(free / "ground_truth" / "vertebrae.csv", dtype={"case_id": str})
    for case in ("case_0001", "case_0002"):  # not forced: byte-identical inputs and ground truth rows
        for name in ("image.nii.gz", "vertebrae.nii.gz", "centroids.json"):
            assert filecmp.cmp(plain / "inputs" / case / name, free / "inputs" / case / name, shallow=False)
        pd.testing.assert_frame_equal(grades_plain[grades_plain.case_id == case].reset_index(drop=True),
                                      grades_free[grades_free.case_id == case].reset_index(drop=True))
    forced = grades_free[grades_free.case_id == "case_0003"]
    assert len(forced) and (forced.grade == 0).all() and (forced["shape"] == "normal").all()
    assert set(forced.vertebra) == set(grades_plain[grades_plain.case_id == "case_0003"].vertebra)
    a = sitk.ReadImage(str(plain / "inputs" / "case_0003" / "image.nii.gz"))
    b = sitk.ReadImage(str(free / "inputs" / "case_0003" / "image.nii.gz"))
    # same scanner geometry; only the spine's length changes (fractures shorten it)
    assert a.GetSize()[:2] == b.GetSize()[:2] and a.GetSpacing() == b.GetSpacing()


def test_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="fracture_free"):
        phantoms.generate("fracture-ct", out=tmp_path / "x", cases=1, seed=0, small=True, progress=False,
                          fracture_free=1.5)
    with pytest.raises(ValueError, match="takes no option"):
        phantoms.generate("aasce-cobb", out=tmp_path / "y", cases=1, seed=0, small=True, progress=False,
                          fracture_free=0.5)
