"""Shared test helpers, for every test package (import them as `from tests.conftest import ...`).

A test that needs a service skips only through `require_service`, which turns the skip into a failure when
SPINEBENCH_REQUIRE_SERVICES=1 (CI sets it), so a missing service can never pass silently in CI. `wait_for` polls
a condition of a real worker or container; `without_ground_truth` makes the blind copy of a dataset that a
predictor may see. Fixture names mean one thing across packages: the platform's `participant`/`organizer` belong to
its `phase` fixture; the container tests' users of their algorithm phase are `algorithm_participant` and
`algorithm_organizer`.

Markers (pyproject.toml): `docker` (needs a Docker engine), `services` (PostgreSQL, Redis, a Celery worker), `slow`
(trains baselines or builds whole bundles). The quick loop is `make test PYTEST_ARGS="-m 'not slow and not docker'"`.
"""

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

REQUIRE_SERVICES = os.environ.get("SPINEBENCH_REQUIRE_SERVICES") == "1"
#: PostgreSQL and a Celery broker configured (CI): what the tests with real worker processes need.
SERVICES = os.environ.get("DATABASE_URL", "").startswith(("postgres", "postgresql")) and bool(
    os.environ.get("CELERY_BROKER_URL")
)
T = TypeVar("T")


def require_service(name: str, available: bool, *, why: str = "") -> None:
    """Skip the calling test when `name` is unavailable, or fail it when services are required."""
    if available:
        return
    message = f"{name} is not available{': ' + why if why else ''}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (SPINEBENCH_REQUIRE_SERVICES=1 forbids skipping)")
    pytest.skip(message)


@pytest.fixture
def eager_tasks():
    """Embedded mode for one test: tasks run in-process at dispatch, whatever the environment configures."""
    from spinebench.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous


def wait_for(predicate: Callable[[], T], *, timeout: float = 60, what: str = "condition") -> T:
    """Poll `predicate` every 0.1 s until it returns a true value (returned), or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def without_ground_truth(dataset: Path, copy: Path) -> Path:
    """A copy of `dataset` without its ground_truth/ folder: all that a predictor or a participant may see."""
    shutil.copytree(dataset, copy)
    shutil.rmtree(copy / "ground_truth")
    return copy


@pytest.fixture
def rabbitmq_vhost():
    """A RabbitMQ virtual host of its own on the machine's broker, deleted after (tests/harness/rabbitmq.py)."""
    from tests.harness import rabbitmq

    require_service("RabbitMQ (127.0.0.1:5672 and rabbitmqctl)", rabbitmq.available(),
                    why="the remote worker's broker user is limited to its queue, which Redis cannot do")
    host = rabbitmq.virtual_host()
    try:
        yield host
    finally:
        host.delete()


@pytest.fixture(scope="session", autouse=True)
def _throwaway_test_root_removed():
    """The settings' throwaway root (media, datasets, cache, static) goes when the session ends, unless it was given
    (SPINEBENCH_TEST_ROOT): a whole run leaves gigabytes there, and this machine's disk is shared."""
    yield
    from django.conf import settings as django_settings

    if getattr(django_settings, "SPINEBENCH_TEST_ROOT_OWNED", False):
        shutil.rmtree(django_settings.SPINEBENCH_TEST_ROOT, ignore_errors=True)
