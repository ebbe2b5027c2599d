"""Platform fixtures. Tests marked `services` run against real PostgreSQL + Redis with a real Celery worker
subprocess (DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://...); without them they skip through
tests/conftest.py's require_service (a failure when SPINEBENCH_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.conftest import SERVICES, require_service, wait_for  # noqa: F401 - wait_for: shared with the tests here

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory, RegistrationFactory, UserFactory

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def phase(db):
    return PhaseFactory()


@pytest.fixture
def participant(phase):
    return RegistrationFactory(challenge=phase.challenge).user


@pytest.fixture
def organizer(phase):
    user = UserFactory()
    phase.challenge.organizers.add(user)
    return user


@pytest.fixture
def other_user(db):
    return UserFactory()


def csv_upload(angles=None, *, name="predictions.csv", content: bytes | None = None) -> SimpleUploadedFile:
    data = content if content is not None else predictions_csv(angles or HIDDEN_ANGLES)
    return SimpleUploadedFile(name, data, content_type="text/csv")


class Worker:
    """A `celery worker` subprocess (solo pool, queue `scoring`) of the test settings and the test database."""

    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "spinebench", "worker", "--pool=solo", "-Q", "scoring",
             "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"],
            cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start: {self.log.read_text(errors='replace')[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (no warm shutdown, no message restored by the worker)."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """One real worker for the session, on the pytest-django test database; yields the Worker (tests may kill and
    restart it). Skips (or fails under SPINEBENCH_REQUIRE_SERVICES=1) without PostgreSQL and Redis."""
    if not SERVICES:
        require_service("PostgreSQL + Redis", False, why="set DATABASE_URL=postgres://... and CELERY_BROKER_URL")
    from django.db import connection

    from spinebench.celery import app

    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    pause_file = tmp_path_factory.mktemp("worker") / "pause"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spinebench.settings.test",
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DATASETS_ROOT": str(settings.DATASETS_ROOT),
        "SPINEBENCH_SCORING_PAUSE_FILE": str(pause_file),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)]),
        "OMP_NUM_THREADS": "1",
    }
    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("scoring")
    worker = Worker(env, tmp_path_factory.mktemp("worker-log") / "worker.log")
    worker.pause_file = pause_file
    worker.start()
    yield worker
    worker.stop()
