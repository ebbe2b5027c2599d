"""The generator API for every task: byte-identical output per seed, the manifest, test-domain groups, errors, CLI."""

import hashlib
import json

import pytest

import phantoms
from evaluators.layout import read_manifest
from phantoms.cli import main


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


EXPECTED_INPUTS = {
    "aasce-cobb": {"image.png"},
    "vertebra-labelling-xr": {"image.nii.gz", "meta.json"},
    "fracture-ct": {"image.nii.gz", "vertebrae.nii.gz", "centroids.json"},
    "metastatic-body-ct": {"image.nii.gz"},
    "lumbosacral-ct": {"image.nii.gz"},
}


@pytest.mark.parametrize("task", sorted(phantoms.GENERATORS))
def test_every_generator_is_byte_identical_per_seed_and_follows_the_layout(task, tmp_path):
    first = phantoms.generate(task, out=tmp_path / "a", cases=1, seed=5, small=True, progress=False)
    second = phantoms.generate(task, out=tmp_path / "b", cases=1, seed=5, small=True, progress=False)
    assert digest(first) == digest(second)
    manifest = read_manifest(first)
    assert manifest.task == task and manifest.split == "train" and manifest.source == "generated"
    for cid in manifest.case_ids:
        assert {p.name for p in (first / "inputs" / cid).iterdir()} == EXPECTED_INPUTS[task]
    assert (first / "preview.png").is_file()
    # the gzip headers carry no timestamp (bytes 4-8 are the mtime)
    for path in first.rglob("*.nii.gz"):
        assert path.read_bytes()[4:8] == b"\0\0\0\0"


def test_metastatic_test_split_has_every_base_case_in_four_groups(tmp_path):
    out = phantoms.generate("metastatic-body-ct", out=tmp_path / "m", cases=2, seed=1, small=True,
                            domain="test", progress=False)
    manifest = read_manifest(out)
    assert manifest.split == "test"
    groups = manifest.groups()
    assert sorted(groups.values()) == sorted(["given", "translated", "resampled", "translated+resampled"] * 2)
    assert groups["case_0001_translated_resampled"] == "translated+resampled"
    for cid in manifest.case_ids:
        assert (out / "ground_truth" / f"{cid}.nii.gz").is_file()


def test_lumbosacral_test_split_has_in_domain_and_cross_dataset_groups(tmp_path):
    out = phantoms.generate("lumbosacral-ct", out=tmp_path / "l", cases=4, seed=1, small=True, domain="test",
                            progress=False)
    assert read_manifest(out).groups() == {"case_0001": "in-domain", "case_0002": "cross-dataset",
                                           "case_0003": "in-domain", "case_0004": "cross-dataset"}


def test_bad_arguments_are_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'spleen'"):
        phantoms.generate("spleen", out=tmp_path, cases=1, seed=0)
    with pytest.raises(ValueError, match="layout 'verse' is not available for aasce-cobb"):
        phantoms.generate("aasce-cobb", out=tmp_path, cases=1, seed=0, layout="verse")
    with pytest.raises(ValueError, match="cases must be at least 1"):
        phantoms.generate("aasce-cobb", out=tmp_path, cases=0, seed=0)
    with pytest.raises(ValueError, match="domain must be one of"):
        phantoms.generate("aasce-cobb", out=tmp_path, cases=1, seed=0, domain="val")


def test_cli_generates_a_dataset(tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["phantoms", "generate", "vertebra-labelling-xr", "--cases", "1", "--seed", "2", "--out", str(out),
                 "--small", "--quiet"])
    assert code == 0
    assert str(out) in capsys.readouterr().out
    meta = json.loads((out / "inputs" / "case_0001" / "meta.json").read_text())
    assert meta["view"] in ("coronal", "sagittal")
    assert read_manifest(out).seed == 2


@pytest.mark.parametrize("task", ["aasce-cobb", "fracture-ct"])
def test_two_workers_write_the_same_files_as_one(task, tmp_path):
    one = phantoms.generate(task, out=tmp_path / "one", cases=3, seed=2, small=True, progress=False)
    two = phantoms.generate(task, out=tmp_path / "two", cases=3, seed=2, small=True, progress=False, workers=2)
    assert digest(one) == digest(two)
