"""The container flow in a real browser (issue "The site as a product", item 6): a participant uploads the example
algorithm (a `docker save` archive of containers/example-algorithm, built by containers/build.sh) on an algorithm
phase through the submission page's chunked uploader, and follows the submission on its page, which refreshes
itself while the submission is active, until it succeeds with a score; the container runs page lists one finished
job per case. A real Celery worker process (queues `scoring` and `containers-cpu`) on the test database runs the
jobs with the real Docker engine, so the page shows the submission in progress, not already done: the worker holds
the scoring step (a test-side pause point) until the test has seen the jobs finished and the submission still
running. Needs PostgreSQL, Redis (the worker shares the database and the broker), Docker and Chromium."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import docker
import pytest
from django.urls import reverse
from playwright.sync_api import expect

from spinebench.algorithms import execution
from spinebench.submissions.models import Submission
from tests.conftest import SERVICES, require_service, wait_for
from tests.containers import conftest as containers
from tests.harness.celery_worker import Worker
from tests.platform.aasce_data import smape
from tests.platform.conftest import purge_queues, worker_environment

from .conftest import assert_accessible

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.docker]
# The container tests' fixtures: the engine, the images of containers/build.sh, this session's own container scope,
# the algorithm phase of synthetic spines and its participant.
docker_client, built_images = containers.docker_client, containers.built_images
own_containers_and_mounts = containers.own_containers_and_mounts
algorithm_phase, algorithm_participant = containers.algorithm_phase, containers.algorithm_participant
#: Where the worker holds a container submission before scoring it (tests/harness/hooks.py).
CONTAINER_SCORING = "spinebench.algorithms.execution:score_predictions"
QUEUES = ("scoring", "containers-cpu")
#: Uploading a few hundred MB in chunks, loading the image and running a container per case on a shared machine.
SLOW_MS = 240_000


@pytest.fixture(scope="session")
def example_archive(request, docker_client, tmp_path_factory) -> Path:
    """`docker save` of the example algorithm image. An image already built (containers/build.sh, as CI does before
    the tests, or another session on this engine) is used as it is; only a missing one makes this session run the
    build (the container tests' `built_images`)."""
    try:
        docker_client.images.get(containers.EXAMPLE_IMAGE)
    except docker.errors.ImageNotFound:
        request.getfixturevalue("built_images")
    path = tmp_path_factory.mktemp("example-archive") / "example-algorithm.tar"
    subprocess.run(["docker", "save", "-o", str(path), containers.EXAMPLE_IMAGE], check=True, timeout=300)
    return path


@pytest.fixture
def container_worker(algorithm_phase, tmp_path):
    """A Celery worker process for the scoring and CPU container queues, started after the phase's data folders
    exist (it reads the same roots), holding container scoring while `worker.pause_file` exists."""
    if not SERVICES:
        require_service("PostgreSQL + Redis", False, why="set DATABASE_URL=postgres://... and CELERY_BROKER_URL")
    purge_queues(*QUEUES)
    worker = Worker(
        env=worker_environment(),
        log=tmp_path / "worker.log",
        queues=QUEUES,
        name=f"containers-flow-{time.monotonic_ns()}@%h",
        pause={CONTAINER_SCORING: tmp_path / "hold-scoring"},
    )
    worker.start()
    yield worker
    worker.pause_file.unlink(missing_ok=True)
    worker.stop()


def test_participant_uploads_the_example_algorithm_and_follows_its_jobs(
    page, live_server, algorithm_phase, algorithm_participant, example_archive, container_worker
):
    from spinebench.workers.services import record_heartbeat

    archive = example_archive
    record_heartbeat(hostname="containers@flow", queues=list(QUEUES))  # the submit page names a served queue
    container_worker.pause_file.write_text("hold")
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(algorithm_participant.username)
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    slugs = {"challenge": algorithm_phase.challenge.slug, "phase": algorithm_phase.slug}
    page.goto(reverse("submissions:create", kwargs=slugs))
    assert_accessible(page)
    page.locator("input[type=file]").set_input_files(str(archive))
    page.get_by_role("button", name="Submit").click()
    expect(page).to_have_url(re.compile(r"/submissions/\d+/$"), timeout=SLOW_MS)
    submission = Submission.objects.get(phase=algorithm_phase)
    assert submission.algorithm_archive  # it came through the page's uploader, stored whole

    # In progress: the page says so and refreshes itself; the worker runs a container per case, then holds.
    expect(page.locator("#status")).not_to_have_text(re.compile("succeeded|failed|cancelled"))
    expect(page.get_by_text("this page refreshes every 5 s")).to_be_visible()
    wait_for(container_worker.reached, timeout=SLOW_MS / 1000, what=f"the containers to run: {container_worker.tail()}")
    page.get_by_role("link", name="Container runs of this submission").click()
    # Held inside the scoring transaction, the submission is still `running` for every reader.
    expect(page.locator("#status")).to_have_text(re.compile("running"))
    jobs = page.locator("#jobs tbody tr")
    expect(jobs).to_have_count(len(algorithm_phase.truth))
    assert sorted(jobs.locator("td:first-child").all_inner_texts()) == sorted(algorithm_phase.truth)
    for status in jobs.locator("td:nth-child(2)").all_inner_texts():
        assert "succeeded" in status
    expect(page.locator("#logs-withheld")).to_be_visible()  # the test inputs are hidden: no output for the submitter
    assert_accessible(page)

    # Scoring goes on: the submission page, left open, turns to succeeded by itself with the score and the rank.
    page.get_by_role("link", name=f"Submission #{submission.pk}").first.click()
    container_worker.pause_file.unlink()
    expect(page.locator("#status")).to_have_text(re.compile("succeeded"), timeout=60_000)
    expect(page.locator("#rank")).to_have_text("1")
    predicted = {
        case: tuple(json.loads((execution.predictions_dir(submission.pk) / case / "angles.json").read_text())["angles"])
        for case in algorithm_phase.truth
    }
    expected = smape(algorithm_phase.truth, predicted)  # the independent reference on the container's own outputs
    results = page.locator("#results").inner_text()
    assert f"{expected:.{algorithm_phase.decimal_places}f}" in results, results
    assert_accessible(page)
    page.goto(algorithm_phase.get_absolute_url())
    expect(page.locator("#leaderboard")).to_contain_text(algorithm_participant.username)
