"""A GPU phase's container gets exactly one GPU from the engine. Runs only where the engine has the NVIDIA runtime;
on machines without a GPU (CI included) only this test is skipped: the queue routing and the DeviceRequest the
runner sends are tested without a GPU in test_platform_pipeline.py and test_runner_options.py."""

import json
import shutil
import subprocess
from dataclasses import replace

import pytest

from spinebench.algorithms import runner

from .conftest import AASCE_OUTPUTS, REPO_ROOT

pytestmark = pytest.mark.docker


def engine_has_gpus(client) -> bool:
    return "nvidia" in (client.info().get("Runtimes") or {}) and shutil.which("nvidia-smi") is not None


def test_gpu_job_sees_one_gpu(built_images, tmp_path):
    if not engine_has_gpus(built_images):
        pytest.skip("no NVIDIA runtime in this engine: the one GPU-only check is skipped (see module docstring)")
    subprocess.run(["docker", "build", "-q", "-t", "spinebench-test/gpu-probe:latest",
                    str(REPO_ROOT / "tests" / "containers" / "images" / "gpu-probe")], check=True, capture_output=True)
    (tmp_path / "input").mkdir()
    result = runner.run_algorithm(client=built_images, image="spinebench-test/gpu-probe:latest",
                                  input_dir=tmp_path / "input", collect_to=tmp_path / "pred",
                                  limits=replace(runner.PRESETS["tiny"], gpu=True), allowed_names=AASCE_OUTPUTS)
    assert result.succeeded, (result.reason, result.log_tail)
    assert json.loads((tmp_path / "pred" / "angles.json").read_text())["angles"][1] == 1.0
