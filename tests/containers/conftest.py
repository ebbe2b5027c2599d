"""Fixtures of the container tests: the real Docker engine (skipped only through `require_service`, so CI fails when
no engine answers), the images built by containers/build.sh (cached by content tag), and a synthetic AP radiograph
whose Cobb angle is known analytically."""

import os
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from spinebench.algorithms import runner
from tests.conftest import require_service

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_IMAGE = "spinebench/example-algorithm:latest"
AASCE_OUTPUTS = ("angles.json", "landmarks.json")


@pytest.fixture(scope="session", autouse=True)
def own_containers_and_mounts(tmp_path_factory):
    """This session's containers carry its own scope label and its /output areas live under its own folder, so
    that the checks "nothing left behind" see only this session's, on an engine other sessions share."""
    saved = {name: os.environ.get(name) for name in ("SPINEBENCH_CONTAINER_SCOPE", "SPINEBENCH_OUTPUT_AREAS")}
    os.environ["SPINEBENCH_CONTAINER_SCOPE"] = f"test-{uuid.uuid4().hex[:12]}"
    os.environ["SPINEBENCH_OUTPUT_AREAS"] = str(tmp_path_factory.mktemp("output-areas"))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def docker_client():
    require_service(
        "docker", runner.engine_available(), why="no Docker engine answers (DOCKER_HOST or the default socket)"
    )
    return runner.docker_client()


@pytest.fixture(scope="session")
def built_images(docker_client):
    """Builds (or finds, by content tag) every image of containers/build.sh."""
    build = subprocess.run(
        [str(REPO_ROOT / "containers" / "build.sh")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    return docker_client


def sinusoid_spine(path: Path, *, amplitude: float = 25.0, height: int = 512, width: int = 256, seed: int = 0) -> float:
    """Writes a radiograph-like PNG whose bright spine follows x = w/2 + A sin(2 pi y / h); returns the main Cobb
    angle of that centreline, 2 atan(2 pi A / h) in degrees (the tilt difference between its steepest points)."""
    rows = np.arange(height)[:, None]
    columns = np.arange(width)[None, :]
    centre = width / 2 + amplitude * np.sin(2 * np.pi * rows / height)
    image = (
        40
        + 150 * np.exp(-(((columns - centre) / 12) ** 2))
        + np.random.default_rng(seed).normal(0, 10, (height, width))
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return float(2 * np.degrees(np.arctan(2 * np.pi * amplitude / height)))


@pytest.fixture
def case_input(tmp_path) -> tuple[Path, float]:
    expected_mt = sinusoid_spine(tmp_path / "input" / "image.png")
    return tmp_path / "input", expected_mt


def managed_labels() -> list[str]:
    """The label filter of this session's managed containers."""
    return [f"{runner.LABEL_MANAGED}=1"] + [f"{key}={value}" for key, value in runner.scope_labels().items()]


def managed_containers(client) -> list:
    return client.containers.list(all=True, filters={"label": managed_labels()})


def output_mounts() -> list[str]:
    """This session's /output tmpfs mounts (SPINEBENCH_OUTPUT_AREAS is its own folder)."""
    prefix = os.environ.get("SPINEBENCH_OUTPUT_AREAS", "")
    return [
        line
        for line in Path("/proc/mounts").read_text().splitlines()
        if line.startswith("sb-output ") and line.split()[1].startswith(prefix)
    ]


# Platform fixtures (Django): an algorithm phase on a dataset of synthetic spines, archives made by `docker save`.

HIDDEN_AMPLITUDES = {"spine_a": 20.0, "spine_b": 35.0, "spine_c": 10.0}


def write_spine_dataset(folder: Path, *, split: str) -> dict[str, tuple[float, float, float]]:
    """A SpineBench aasce-cobb dataset of sinusoid spines; ground truth (pt, mt, tl) with the analytic main angle."""
    from evaluators.layout import CaseEntry, Manifest, write_manifest

    truth = {}
    for index, (case_id, amplitude) in enumerate(HIDDEN_AMPLITUDES.items()):
        main = sinusoid_spine(folder / "inputs" / case_id / "image.png", amplitude=amplitude, seed=index)
        truth[case_id] = (4.0 + index, round(main, 4), 9.0 + index)
    (folder / "ground_truth").mkdir(parents=True, exist_ok=True)
    rows = ["case_id,pt,mt,tl"] + [f"{case},{pt},{mt},{tl}" for case, (pt, mt, tl) in truth.items()]
    (folder / "ground_truth" / "angles.csv").write_text("\n".join(rows) + "\n")
    write_manifest(
        folder,
        Manifest(
            task="aasce-cobb", split=split, domain=split, cases=tuple(CaseEntry(id=case) for case in truth), seed=None
        ),
    )
    return truth


@pytest.fixture
def algorithm_phase(db, settings):
    """An AASCE algorithm phase on a hidden test split of synthetic spines, with small container limits."""
    from spinebench.challenges.models import Challenge, Phase
    from spinebench.datasets.services import link_phase_datasets, register_dataset

    challenge = Challenge.objects.create(slug="aasce-containers", title="AASCE containers")
    folder = Path(settings.DATASETS_ROOT) / challenge.slug / "test"
    truth = write_spine_dataset(folder, split="test")
    dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
    phase = Phase.objects.create(
        challenge=challenge,
        slug="algorithm-test",
        title="Algorithm test",
        task="aasce-cobb",
        submission_kind=Phase.SubmissionKind.ALGORITHM,
        max_upload_bytes=2 << 30,
        case_time_limit_seconds=30,
        memory_limit_mb=256,
        cpu_limit=1.0,
        pids_limit=64,
        output_limit_mb=8,
        submission_limit=None,
        extra_metrics=["mae_pt", "mae_mt", "mae_tl"],
    )
    link_phase_datasets(phase=phase, dataset=dataset)
    phase.truth = truth
    return phase


@pytest.fixture
def algorithm_participant(algorithm_phase):
    from django.contrib.auth import get_user_model

    from spinebench.challenges.models import Registration

    user = get_user_model().objects.create_user("container-alice", password="correct-horse-battery")
    Registration.objects.create(challenge=algorithm_phase.challenge, user=user, status=Registration.Status.APPROVED)
    return user


@pytest.fixture
def algorithm_organizer(algorithm_phase):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user("container-olga", password="correct-horse-battery")
    algorithm_phase.challenge.organizers.add(user)
    return user


@pytest.fixture(scope="session")
def saved_images(built_images, tmp_path_factory):
    """`docker save` archives, made once per session on demand: saved_images("spinebench/...:latest") -> Path."""
    folder = tmp_path_factory.mktemp("saved-images")
    cache: dict[str, Path] = {}

    def save(image: str) -> Path:
        if image not in cache:
            path = folder / (image.replace("/", "_").replace(":", "_") + ".tar")
            subprocess.run(["docker", "save", "-o", str(path), image], check=True, timeout=300)
            cache[image] = path
        return cache[image]

    return save
