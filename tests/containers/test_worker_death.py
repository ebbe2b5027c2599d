"""A container worker killed (SIGKILL) while a container runs: the Celery message comes back, the next worker finds
the dead worker's lease stale, removes its orphan container by label, reruns only the unfinished job, and the
submission is scored exactly once. Real PostgreSQL, Redis, Celery worker processes and Docker engine."""

import os
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files import File

from spinebench.algorithms import runner
from spinebench.algorithms.models import Job
from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.services import create_submission
from tests.conftest import SERVICES, require_service, wait_for
from tests.harness.celery_worker import Worker, python_path

from .conftest import REPO_ROOT, managed_containers, managed_labels, output_mounts

pytestmark = [pytest.mark.docker, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def start_worker(env: dict, log: Path) -> Worker:
    worker = Worker(env=env, log=log, queues=["containers-cpu"])
    worker.start()
    return worker


@pytest.fixture
def slow_archive(built_images, tmp_path):
    subprocess.run(
        [
            "docker",
            "build",
            "-q",
            "-t",
            "spinebench-test/slow-example:latest",
            str(REPO_ROOT / "tests" / "containers" / "images" / "slow-example"),
        ],
        check=True,
        capture_output=True,
    )
    path = tmp_path / "slow.tar"
    subprocess.run(["docker", "save", "-o", str(path), "spinebench-test/slow-example:latest"], check=True)
    return path


def test_killed_worker_job_is_retried_and_scored_once(algorithm_phase, algorithm_participant, slow_archive, tmp_path):
    if not SERVICES:
        require_service("PostgreSQL + Redis", False, why="set DATABASE_URL=postgres://... and CELERY_BROKER_URL")
    from django.db import connection

    from spinebench.celery import app

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spinebench.settings.test",
        "DATABASE_URL": os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"],
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "DATASETS_ROOT": str(settings.DATASETS_ROOT),
        "CELERY_VISIBILITY_TIMEOUT": "3",
        "SPINEBENCH_CONTAINER_LEASE_SECONDS": "3",
        "PYTHONPATH": python_path(),
        "OMP_NUM_THREADS": "1",
    }
    with app.connection_for_write() as broker:
        broker.default_channel.queue_purge("containers-cpu")
    client = runner.docker_client()
    first = start_worker(env, tmp_path / "worker-1.log")
    second = None
    try:
        with open(slow_archive, "rb") as handle:
            submission = create_submission(
                phase=algorithm_phase, user=algorithm_participant, upload=File(handle, name="slow.tar")
            )
        running = {"label": managed_labels(), "status": "running"}
        orphan = wait_for(lambda: client.containers.list(filters=running), timeout=120, what="a running container")[0]
        first.kill()
        orphan.reload()
        assert orphan.status == "running"  # the dead worker's container outlives it
        second = start_worker(env, tmp_path / "worker-2.log")
        wait_for(
            lambda: Submission.objects.get(pk=submission.pk).status in ("succeeded", "failed"),
            timeout=180,
            what="the submission to finish",
        )
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    assert Evaluation.objects.filter(submission=submission).count() == 1
    attempts = sorted(Job.objects.filter(run__submission=submission).values_list("attempts", flat=True))
    assert attempts == [1, 1, 2]  # only the job the dead worker was running ran again
    assert submission.algorithm_run.attempts == 2
    assert orphan.id not in {container.id for container in client.containers.list(all=True)}
    assert managed_containers(client) == [] and output_mounts() == []
