"""Platform fixtures. Tests marked `services` run against real PostgreSQL + Redis with a real Celery worker
subprocess (DATABASE_URL=postgres://..., CELERY_BROKER_URL=redis://...); without them they skip through
tests/conftest.py's require_service (a failure when SPINEBENCH_REQUIRE_SERVICES=1)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from spinebench.accounts.tokens import issue_token
from tests.conftest import SERVICES, require_service, wait_for  # noqa: F401 - wait_for: shared with the tests here
from tests.harness.celery_worker import Worker, python_path

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory, RegistrationFactory, UserFactory

REPO = Path(__file__).resolve().parents[2]
#: The scoring step inside score_submission's transaction (row locked): where fault tests pause a worker.
SCORING_STEP = "spinebench.submissions.tasks:score_predictions"


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


def api(user=None) -> APIClient:
    """A DRF test client, authenticated with a fresh API token of `user` when one is given (anonymous otherwise)."""
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user=user, name='test').secret}")
    return client


def csv_upload(angles=None, *, name="predictions.csv", content: bytes | None = None) -> SimpleUploadedFile:
    data = content if content is not None else predictions_csv(angles or HIDDEN_ANGLES)
    return SimpleUploadedFile(name, data, content_type="text/csv")


def worker_environment(**extra) -> dict:
    """The environment of a worker subprocess on the pytest-django test database (PostgreSQL) and this session's
    storage roots; `extra` adds or overrides variables."""
    from django.db import connection

    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spinebench.settings.test",
        "DATABASE_URL": url,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DATASETS_ROOT": str(settings.DATASETS_ROOT),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "PYTHONPATH": python_path(),
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def purge_queues(*queues: str) -> None:
    from spinebench.celery import app

    with app.connection_for_write() as broker:
        for queue in queues:
            broker.default_channel.queue_purge(queue)


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker, tmp_path_factory):
    """One real worker (tests/harness) for the session, queue `scoring`, on the pytest-django test database; yields
    the Worker (tests may kill and restart it). Scoring pauses inside its transaction while `worker.pause_file`
    exists (a test-side hook, see tests/harness/hooks.py). Skips (or fails under SPINEBENCH_REQUIRE_SERVICES=1)
    without PostgreSQL and Redis."""
    if not SERVICES:
        require_service("PostgreSQL + Redis", False, why="set DATABASE_URL=postgres://... and CELERY_BROKER_URL")
    purge_queues("scoring")
    pause_file = tmp_path_factory.mktemp("worker") / "pause"
    worker = Worker(env=worker_environment(), log=tmp_path_factory.mktemp("worker-log") / "worker.log",
                    pause={SCORING_STEP: pause_file})
    worker.start()
    yield worker
    worker.stop()
