"""Baselines as algorithm images, through the real Docker engine: the family image `spinebench/baselines-cpu` (built on
demand by `containers/build.sh baselines`, cached by content tag) plus a trained checkpoint makes a per-method image
that E4's runner runs under the sandbox limits like any participant image, and its predictions equal the in-process
`baselines.api.predict` predictions of the same checkpoint (the image runs the same code, on torch 2.13 CPU)."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

import phantoms
from baselines import api
from baselines.container import ImageBuildError, build_method_image, cgroup_cpus, input_cases, run
from evaluators.tasks import get_task
from spinebench.algorithms import runner
from spinebench.algorithms.trusted_images import recorded_image
from tests.conftest import require_service

REPO_ROOT = Path(__file__).resolve().parents[2]
FAMILY_IMAGE = "spinebench/baselines-cpu:latest"
TORCH_WHEEL = "/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"  # containers/build.sh's default
SANDBOX = runner.Limits(memory_mb=2048, cpus=1.0, pids=128, wall_clock_s=120, output_mb=16, tmp_mb=64, output_files=32)
#: Methods whose import chain avoids torchvision (absent from the image: no torchvision build matches torch 2.13 CPU).
RUNNABLE = {
    "fracture-ct": {"dual-pathway-3d", "dual-pathway-1slice", "dual-pathway-5slices", "conditioned-vae", "vae",
                    "autoencoder-classifier", "encoder-classifier"},
    "metastatic-body-ct": {f"unet3d-{c}" for c in ("n", "s", "t", "r", "st", "sr", "tr", "str")},
    "lumbosacral-ct": {"unet3d", "semi-cgan", "fewshot-gan"},
    "aasce-cobb": {"top-down", "centreline-cascade"},
    "vertebra-labelling-xr": {"unet-heatmaps", "unet-residual-corrector"},
}


@pytest.fixture(scope="module")
def family_image(docker_client):
    wheel = Path(os.environ.get("SPINEBENCH_TORCH_WHEEL", TORCH_WHEEL))
    require_service("CPU torch wheel", wheel.is_file(), why=f"{wheel} (set SPINEBENCH_TORCH_WHEEL)")
    build = subprocess.run([str(REPO_ROOT / "containers" / "build.sh"), "baselines"],
                           capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    return recorded_image(docker_client, FAMILY_IMAGE)  # the id build.sh recorded: a re-pointed tag changes nothing


def trained_baseline(task_id: str, method: str, folder: Path) -> tuple[Path, Path, Path]:
    """A small phantom dataset of two cases, a `tiny` checkpoint and the in-process predictions of every case."""
    torch.set_num_threads(1)
    data = phantoms.generate(task_id, out=folder / "data", cases=2, seed=3, small=True, progress=False)
    checkpoint = api.train(task_id, method, preset="tiny", data_dir=data, out=folder / "model.pt", device="cpu",
                           progress=False)
    predictions = api.predict(task_id, method, checkpoint=checkpoint, data_dir=data, out=folder / "in-process",
                              device="cpu", progress=False)
    return data, checkpoint, predictions


@pytest.fixture
def method_image(family_image, docker_client):
    tags = []

    def build(checkpoint: Path, method: str) -> str:
        tag = f"spinebench-test/baseline-{method}:latest"
        build_method_image(checkpoint=checkpoint, tag=tag, family_image=family_image)
        tags.append(tag)
        return tag

    yield build
    for tag in tags:
        docker_client.images.remove(tag, force=True)


@pytest.mark.docker
def test_family_image_imports_the_methods_without_torchvision(family_image, docker_client):
    image = docker_client.images.get(family_image)
    assert image.attrs["Config"]["User"] == "algorithm"
    listing = docker_client.containers.run(family_image, ["--list"], remove=True, network_mode="none",
                                           read_only=True).decode()
    status = {tuple(line.split("\t")[:2]): line.split("\t")[2] for line in listing.splitlines()}
    for task_id, methods in RUNNABLE.items():
        for method in methods:
            assert status[task_id, method] == "ok", (task_id, method, status.get((task_id, method)))
    # Faster R-CNN needs torchvision, which the image lacks: listed with the reason, not hidden.
    assert "torchvision" in status["aasce-cobb", "detector-corners"]
    version = docker_client.containers.run(family_image, ["-c", "import torch; print(torch.__version__)"],
                                           entrypoint="python3", remove=True, network_mode="none").decode()
    assert version.strip() == "2.13.0+cpu"


@pytest.mark.docker
def test_fracture_image_per_case_matches_in_process(tmp_path, docker_client, method_image):
    data, checkpoint, expected_dir = trained_baseline("fracture-ct", "dual-pathway-3d", tmp_path)
    image = method_image(checkpoint, "dual-pathway-3d")
    labels = docker_client.images.get(image).labels
    assert labels["org.spinebench.baseline.method"] == "dual-pathway-3d"
    allowed = get_task("fracture-ct").output_files
    per_case = {}
    for case_dir in sorted((data / "inputs").iterdir()):
        result = runner.run_algorithm(client=docker_client, image=image, input_dir=case_dir,
                                      collect_to=tmp_path / "container" / case_dir.name, limits=SANDBOX,
                                      allowed_names=allowed)
        assert result.succeeded, (result.reason, result.log_tail)
        assert result.files == ["fractures.json"]
        got = json.loads((tmp_path / "container" / case_dir.name / "fractures.json").read_text())
        want = json.loads((expected_dir / case_dir.name / "fractures.json").read_text())
        assert set(got["vertebrae"]) == set(want["vertebrae"]) and got["vertebrae"]
        for vertebra, probability in want["vertebrae"].items():
            assert got["vertebrae"][vertebra] == pytest.approx(probability, rel=1e-4, abs=1e-6), vertebra
        assert got.get("patient") == pytest.approx(want.get("patient"), rel=1e-4, abs=1e-6)
        per_case[case_dir.name] = got["vertebrae"]
    # the two cases have different vertebrae or scores, so matching each is not matching a constant
    assert len({json.dumps(v, sort_keys=True) for v in per_case.values()}) == 2


@pytest.mark.docker
def test_metastatic_image_batch_matches_in_process(tmp_path, docker_client, method_image):
    data, checkpoint, expected_dir = trained_baseline("metastatic-body-ct", "unet3d-n", tmp_path)
    image = method_image(checkpoint, "unet3d-n")
    case_ids = sorted(path.name for path in (data / "inputs").iterdir())
    result = runner.run_algorithm(client=docker_client, image=image, input_dir=data / "inputs",
                                  collect_to=tmp_path / "container", limits=SANDBOX,
                                  allowed_names=get_task("metastatic-body-ct").output_files, case_ids=case_ids)
    assert result.succeeded, (result.reason, result.log_tail)
    for case_id in case_ids:
        got = sitk.ReadImage(str(tmp_path / "container" / case_id / "segmentation.nii.gz"))
        want = sitk.ReadImage(str(expected_dir / case_id / "segmentation.nii.gz"))
        reference = sitk.ReadImage(str(data / "inputs" / case_id / "image.nii.gz"))
        assert got.GetSize() == reference.GetSize()
        assert np.allclose(got.GetSpacing(), reference.GetSpacing())
        assert np.allclose(got.GetOrigin(), reference.GetOrigin())
        got_voxels, want_voxels = sitk.GetArrayFromImage(got), sitk.GetArrayFromImage(want)
        # thresholded network outputs: float rounding between torch builds may flip a voxel on the decision boundary
        assert np.mean(got_voxels != want_voxels) <= 1e-4, case_id


@pytest.mark.docker
def test_method_image_refuses_a_method_the_image_cannot_import(tmp_path, family_image, docker_client):
    checkpoint = tmp_path / "detector.pt"
    torch.save({"format": api.CHECKPOINT_FORMAT, "task": "aasce-cobb", "method": "detector-corners", "config": {}},
               checkpoint)
    tag = "spinebench-test/baseline-detector-corners:latest"
    try:
        with pytest.raises(ImageBuildError, match="(?s)can run aasce-cobb detector-corners.*torchvision"):
            build_method_image(checkpoint=checkpoint, tag=tag, family_image=family_image)
    finally:
        docker_client.images.remove(tag, force=True)


@pytest.mark.slow
def test_entry_point_single_and_batch_layouts(tmp_path):
    """The container's entry logic in-process: one case's files in /input, or /input/<case_id>/ folders."""
    data, checkpoint, expected_dir = trained_baseline("fracture-ct", "encoder-classifier", tmp_path)
    case_ids = sorted(path.name for path in (data / "inputs").iterdir())
    single = run(checkpoint=checkpoint, input_dir=data / "inputs" / case_ids[0], output_dir=tmp_path / "single",
                 work_dir=tmp_path / "work-single")
    assert single == [tmp_path / "single" / "fractures.json"]
    assert json.loads(single[0].read_text()) == json.loads((expected_dir / case_ids[0] / "fractures.json").read_text())
    batch = run(checkpoint=checkpoint, input_dir=data / "inputs", output_dir=tmp_path / "batch",
                work_dir=tmp_path / "work-batch")
    assert batch == [tmp_path / "batch" / case / "fractures.json" for case in case_ids]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="empty or missing"):
        input_cases(empty)


@pytest.mark.parametrize(("files", "expected"), [
    ({"cpu.max": "150000 100000\n"}, 1),
    ({"cpu.max": "400000 100000\n"}, 4),
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2),
    ({"cpu/cpu.cfs_quota_us": "50000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({}, None),
])
def test_threads_follow_the_cgroup_cpu_quota(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpus(tmp_path) == expected
