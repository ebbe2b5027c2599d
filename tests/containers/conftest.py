"""Fixtures of the container tests: the real Docker engine (skipped only through `require_service`, so CI fails when
no engine answers), the images built by containers/build.sh (cached by content tag), and a synthetic AP radiograph
whose Cobb angle is known analytically."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinebench.algorithms import runner
from tests.conftest import require_service

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_IMAGE = "spinebench/example-algorithm:latest"
AASCE_OUTPUTS = ("angles.json", "landmarks.json")


@pytest.fixture(scope="session")
def docker_client():
    require_service("docker", runner.engine_available(), why="no Docker engine answers (DOCKER_HOST or the default socket)")
    return runner.docker_client()


@pytest.fixture(scope="session")
def built_images(docker_client):
    """Builds (or finds, by content tag) the base, example-algorithm and hostile images."""
    build = subprocess.run([str(REPO_ROOT / "containers" / "build.sh"), "example-algorithm", "hostile"],
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    return docker_client


def sinusoid_spine(path: Path, *, amplitude: float = 25.0, height: int = 512, width: int = 256, seed: int = 0) -> float:
    """Writes a radiograph-like PNG whose bright spine follows x = w/2 + A sin(2 pi y / h); returns the main Cobb
    angle of that centreline, 2 atan(2 pi A / h) in degrees (the tilt difference between its steepest points)."""
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    centre = width / 2 + amplitude * np.sin(2 * np.pi * rows / height)
    image = 40 + 150 * np.exp(-(((columns - centre) / 12) ** 2)) + np.random.default_rng(seed).normal(0, 10, (height, width))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return float(2 * np.degrees(np.arctan(2 * np.pi * amplitude / height)))


@pytest.fixture
def case_input(tmp_path) -> tuple[Path, float]:
    expected_mt = sinusoid_spine(tmp_path / "input" / "image.png")
    return tmp_path / "input", expected_mt


def managed_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": f"{runner.LABEL_MANAGED}=1"})


def output_mounts() -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if line.startswith("sb-output ")]
