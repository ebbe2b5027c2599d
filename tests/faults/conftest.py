"""Fixtures of the fault tests: a throwaway PostgreSQL cluster and a second Docker engine, each owned by one test
(never the machine's own services), and the container images of tests/containers."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import require_service
from tests.containers.conftest import REPO_ROOT, built_images, docker_client  # noqa: F401 - fixtures reused here

from . import docker_engine, postgres_cluster

SLOW_EXAMPLE = "spinebench-test/slow-example:latest"
#: 15 s per case: longer than the 10 s a stopping engine gives a container before it kills it.
SLOWER_EXAMPLE = "spinebench-faults/slower-example:latest"


def wait_until(predicate, *, timeout: float, what: str, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def cluster():
    require_service("PostgreSQL server binaries", postgres_cluster.available(),
                    why="install Debian's postgresql (initdb, pg_ctl) to run a throwaway cluster")
    owned = postgres_cluster.Cluster()
    try:
        owned.start()
        owned.create_database("spinebench_faults")
        yield owned
    finally:
        owned.destroy()


@pytest.fixture(scope="session")
def own_engine():
    """A second dockerd owned by the fault tests (see docker_engine.py), shared by those that leave it clean; needs
    root, as dockerd does."""
    require_service("a second Docker engine", docker_engine.available(), why="needs root and dockerd")
    engine = docker_engine.Engine()
    try:
        engine.start()
        yield engine
    finally:
        engine.destroy()


@pytest.fixture
def hostile_archive(built_images, tmp_path):  # noqa: F811 - the fixture imported above
    """`docker save` of one hostile image of containers/hostile: hostile_archive("huge-output") -> Path."""

    def save(behaviour: str):
        path = tmp_path / f"hostile-{behaviour}.tar"
        subprocess.run(["docker", "save", "-o", str(path), f"spinebench/hostile-{behaviour}:latest"], check=True,
                       timeout=600)
        return path

    return save


@pytest.fixture
def slow_archive(built_images, tmp_path):  # noqa: F811 - the fixture imported above
    """`docker save` of the example algorithm slowed by 3 s per case (built on the shared engine)."""
    subprocess.run(["docker", "build", "-q", "-t", SLOW_EXAMPLE,
                    str(REPO_ROOT / "tests" / "containers" / "images" / "slow-example")], check=True,
                   capture_output=True, timeout=600)
    path = tmp_path / "slow.tar"
    subprocess.run(["docker", "save", "-o", str(path), SLOW_EXAMPLE], check=True, timeout=600)
    return path


@pytest.fixture
def slower_archive(slow_archive, tmp_path):
    """`docker save` of the example algorithm slowed by 15 s per case (tests/faults/images/slower-example)."""
    subprocess.run(["docker", "build", "-q", "-t", SLOWER_EXAMPLE, str(Path(__file__).with_name("images") /
                    "slower-example")], check=True, capture_output=True, timeout=600)
    path = tmp_path / "slower.tar"
    subprocess.run(["docker", "save", "-o", str(path), SLOWER_EXAMPLE], check=True, timeout=600)
    return path
