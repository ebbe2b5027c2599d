"""Shared test helpers. A test that needs a service skips only through `require_service`, which turns the skip into
a failure when SPINEBENCH_REQUIRE_SERVICES=1 (CI sets it), so a missing service can never pass silently in CI."""

import os

import pytest

REQUIRE_SERVICES = os.environ.get("SPINEBENCH_REQUIRE_SERVICES") == "1"


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
