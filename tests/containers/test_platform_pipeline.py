"""Algorithm submissions through the platform with the real engine: upload through the API and the page, validation,
one container per case, outputs scored by the platform and ranked on the leaderboard; refusals and hostile images
ending failed with their reason; logs of a hidden phase withheld from the submitter; cancel stops the container."""

import json
import time

import pytest
from django.core.files import File
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.algorithms import execution, job_worker, local_client, runner
from spinebench.algorithms.models import AlgorithmImage, AlgorithmRun, Job
from spinebench.algorithms.tasks import queue_for_submission
from spinebench.submissions.models import Submission
from spinebench.submissions.services import cancel_submission, create_submission
from spinebench.workers.services import record_heartbeat
from tests.platform.aasce_data import smape  # the independent reference, shared with the platform tests

from .conftest import EXAMPLE_IMAGE, managed_containers, managed_labels, output_mounts

pytestmark = pytest.mark.django_db  # every test but the GPU-queue one also needs a Docker engine: marked each


def submit_file(phase, user, path, capture):
    with capture(execute=True), open(path, "rb") as handle:
        submission = create_submission(phase=phase, user=user, upload=File(handle, name=path.name))
    submission.refresh_from_db()
    return submission


@pytest.mark.docker
def test_example_algorithm_uploaded_through_api_is_ranked(
    algorithm_phase, algorithm_participant, saved_images, eager_tasks, django_capture_on_commit_callbacks
):
    api = APIClient()
    api.force_authenticate(algorithm_participant)
    archive = saved_images(EXAMPLE_IMAGE)
    with django_capture_on_commit_callbacks(execute=True), open(archive, "rb") as handle:
        response = api.post(f"/api/phases/{algorithm_phase.pk}/submissions/", {"file": handle}, format="multipart")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == "succeeded", submission.error_message
    run = submission.algorithm_run
    assert run.image.image_id == runner.docker_client().images.get(EXAMPLE_IMAGE).id
    assert sorted(job.case_id for job in run.jobs.all()) == sorted(algorithm_phase.truth)
    assert all(job.status == "succeeded" and job.attempts == 1 for job in run.jobs.all())
    predicted = {
        case: tuple(json.loads((execution.predictions_dir(submission.pk) / case / "angles.json").read_text())["angles"])
        for case in algorithm_phase.truth
    }
    for case, (_, main, _) in algorithm_phase.truth.items():
        assert predicted[case][1] == pytest.approx(main, abs=3.0)
    assert submission.evaluation.aggregates["smape"] == pytest.approx(smape(algorithm_phase.truth, predicted), abs=1e-6)
    board = api.get(f"/api/phases/{algorithm_phase.pk}/leaderboard/").json()
    assert [(row["rank"], row["submission"]) for row in board["rows"]] == [(1, submission.pk)]
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []
    status = api.get(f"/api/submissions/{submission.pk}/").json()
    assert status["status"] == "succeeded" and status["rank"] == 1


@pytest.mark.docker
def test_page_upload_reuses_known_image_and_withholds_hidden_logs(
    algorithm_phase,
    algorithm_participant,
    algorithm_organizer,
    client,
    saved_images,
    eager_tasks,
    django_capture_on_commit_callbacks,
):
    archive = saved_images(EXAMPLE_IMAGE)
    client.force_login(algorithm_participant)
    url = reverse(
        "submissions:create", kwargs={"challenge": algorithm_phase.challenge.slug, "phase": algorithm_phase.slug}
    )
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True), open(archive, "rb") as handle:
            response = client.post(url, {"file": handle, "comment": "example"})
        assert response.status_code == 302
    first, second = Submission.objects.filter(phase=algorithm_phase).order_by("pk")
    assert first.status == second.status == "succeeded"
    assert (first.algorithm_run.image_reused, second.algorithm_run.image_reused) == (False, True)
    assert AlgorithmImage.objects.get().uploads == 2
    page = client.get(reverse("algorithms:submission", kwargs={"pk": second.pk})).content.decode()
    assert "already known (same sha256)" in page and "logs-withheld" in page and "pt=" not in page
    client.force_login(algorithm_organizer)
    page = client.get(reverse("algorithms:submission", kwargs={"pk": second.pk})).content.decode()
    assert "pt=" in page and "logs-withheld" not in page  # the example prints its angles per case
    board = client.get(algorithm_phase.get_absolute_url()).content.decode()
    assert algorithm_participant.username in board  # a name no page shows by itself


@pytest.mark.docker
def test_root_image_archive_is_refused_with_reason(
    algorithm_phase, algorithm_participant, tmp_path, eager_tasks, django_capture_on_commit_callbacks, docker_client
):
    # docker_client: the pipeline asks the engine about the archive, so this test needs one (skipped through
    # require_service without it, which CI turns into a failure)
    from .test_archives import write_archive

    write_archive(tmp_path / "root.tar", user="")
    submission = submit_file(
        algorithm_phase, algorithm_participant, tmp_path / "root.tar", django_capture_on_commit_callbacks
    )
    assert submission.status == "failed"
    assert submission.error_message.startswith("Archive refused: the image runs as root")
    assert not AlgorithmImage.objects.exists()


@pytest.mark.docker
def test_hostile_symlink_image_fails_with_reason_and_leaves_nothing(
    algorithm_phase, algorithm_participant, saved_images, eager_tasks, django_capture_on_commit_callbacks
):
    archive = saved_images("spinebench/hostile-symlink-output:latest")
    submission = submit_file(algorithm_phase, algorithm_participant, archive, django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    first_case = sorted(algorithm_phase.truth)[0]
    assert submission.error_message == (
        f"case {first_case}: /output/angles.json is a symbolic link; links are refused, never followed"
    )
    assert not hasattr(submission, "evaluation") or submission.evaluation is None
    assert managed_containers(runner.docker_client()) == [] and output_mounts() == []


def cancel(submission):
    assert cancel_submission(Submission.objects.get(pk=submission.pk))
    return "cancelled", "Cancelled."


def sweep(submission):
    from datetime import timedelta

    from spinebench.submissions.tasks import sweep_time_limits

    Submission.objects.filter(pk=submission.pk).update(created=submission.created - timedelta(hours=2))
    assert sweep_time_limits() == 1
    return "failed", f"time limit of {submission.phase.time_limit_seconds} s (it was running)"


@pytest.mark.parametrize("end", [cancel, sweep], ids=["cancelled by the creator", "failed by the time-limit sweep"])
@pytest.mark.docker
def test_ending_a_submission_stops_its_running_container(
    algorithm_phase, algorithm_participant, saved_images, monkeypatch, django_capture_on_commit_callbacks, end
):
    archive = saved_images("spinebench/hostile-sleep:latest")
    # This test is the worker (it runs the pipeline below): with a broker configured, uploads need a live one.
    record_heartbeat(hostname="this-test@host", queues=["containers-cpu"])
    with open(archive, "rb") as handle:  # queued; the pipeline is run below as a worker would run it
        submission = create_submission(
            phase=algorithm_phase, user=algorithm_participant, upload=File(handle, name="sleep.tar")
        )
    client = runner.docker_client()
    poll = job_worker.StopCheck.__call__
    seen = {}

    def end_while_running(self):
        # The submission ends while the sleeping container runs (same database connection here).
        if not seen:
            seen["containers"] = len(client.containers.list(filters={"label": managed_labels()}))
            with django_capture_on_commit_callbacks(execute=True):
                seen["expected"] = end(submission)
            self._last = 0.0
        return poll(self)

    monkeypatch.setattr(job_worker.StopCheck, "__call__", end_while_running)
    started = time.monotonic()
    assert local_client.process_submission(submission.pk, client=client) == "stopped"
    assert seen["containers"] == 1 and time.monotonic() - started < 20
    submission.refresh_from_db()
    status, message = seen["expected"]
    assert submission.status == status and message in submission.error_message
    jobs = Job.objects.filter(run__submission=submission)
    assert jobs.count() == len(algorithm_phase.truth) and {job.status for job in jobs} == {"cancelled"}
    assert managed_containers(client) == [] and output_mounts() == []


def test_gpu_phase_goes_to_the_gpu_queue(algorithm_phase, algorithm_participant, tmp_path):
    submission = Submission.objects.create(phase=algorithm_phase, creator=algorithm_participant)
    assert queue_for_submission(submission.pk) == "containers-cpu"
    algorithm_phase.requires_gpu = True
    algorithm_phase.save()
    assert queue_for_submission(submission.pk) == "containers-gpu"
    from spinebench.algorithms.models import ContainerConfig

    assert ContainerConfig.for_phase(algorithm_phase).limits().gpu is True


@pytest.mark.docker
def test_recovery_requeues_a_dead_run_and_removes_its_orphan_container(
    algorithm_phase, algorithm_participant, saved_images, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from spinebench.submissions.status import Status

    submission = Submission.objects.create(phase=algorithm_phase, creator=algorithm_participant, status=Status.RUNNING)
    run = AlgorithmRun.objects.create(
        submission=submission, worker="dead-host:1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    client = runner.docker_client()
    orphan = client.containers.create(
        "spinebench/hostile-sleep:latest",
        labels={
            runner.LABEL_MANAGED: "1",
            runner.LABEL_SUBMISSION: str(submission.pk),
            runner.LABEL_JOB: "0",
            **runner.scope_labels(),
        },
    )
    dispatched = []
    from spinebench.algorithms import tasks

    original = tasks.process_algorithm_submission.delay
    tasks.process_algorithm_submission.delay = lambda **kwargs: dispatched.append(kwargs)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            counts = execution.recover(client=client)
    finally:
        tasks.process_algorithm_submission.delay = original
    assert counts == {"requeued": 1, "containers_removed": 1}
    assert dispatched == [{"submission_pk": submission.pk}]
    submission.refresh_from_db()
    assert submission.status == "queued"
    assert not [c for c in client.containers.list(all=True) if c.id == orphan.id]
    AlgorithmRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())  # a live run keeps its containers
    live = client.containers.create(
        "spinebench/hostile-sleep:latest",
        labels={
            runner.LABEL_MANAGED: "1",
            runner.LABEL_SUBMISSION: str(submission.pk),
            runner.LABEL_JOB: "0",
            **runner.scope_labels(),
        },
    )
    Submission.objects.filter(pk=submission.pk).update(status=Status.RUNNING)
    try:
        assert execution.recover(client=client) == {"requeued": 0, "containers_removed": 0}
    finally:
        live.remove(force=True)


@pytest.mark.docker
def test_batch_phase_runs_one_container_over_every_case(
    algorithm_phase, algorithm_participant, saved_images, eager_tasks, django_capture_on_commit_callbacks
):
    from spinebench.algorithms.models import ContainerConfig

    config = ContainerConfig.for_phase(algorithm_phase)
    config.mode = ContainerConfig.Mode.BATCH
    config.save()
    submission = submit_file(
        algorithm_phase, algorithm_participant, saved_images(EXAMPLE_IMAGE), django_capture_on_commit_callbacks
    )
    assert submission.status == "succeeded", submission.error_message
    [job] = submission.algorithm_run.jobs.all()
    assert job.case_id == "" and job.status == "succeeded"
    assert all(case in job.log_tail for case in algorithm_phase.truth)  # the example prints one line per case
    assert set(submission.evaluation.case_metrics) == set(algorithm_phase.truth)


@pytest.mark.docker
def test_remote_recovery_asks_the_site_and_cleans_its_own_engine(
    algorithm_phase, algorithm_participant, transactional_db, live_server, settings, tmp_path, monkeypatch
):
    """On a remote worker host the periodic recovery goes through the worker-token API: the site requeues the run
    of a dead worker and names the live runs; the host removes the orphan container on its engine and keeps a live
    run's."""
    from datetime import timedelta

    from django.utils import timezone

    from spinebench.accounts.models import ApiToken
    from spinebench.accounts.tokens import issue_token
    from spinebench.algorithms import tasks
    from spinebench.algorithms.remote_client import recover_remote
    from spinebench.submissions.status import Status

    settings.SPINEBENCH_JOB_SERVER = live_server.url
    settings.SPINEBENCH_WORKER_TOKEN = issue_token(name="remote-host", kind=ApiToken.Kind.WORKER).secret
    settings.SPINEBENCH_WORKER_DIR = tmp_path / "remote-host"
    dispatched = []
    monkeypatch.setattr(tasks.process_algorithm_submission, "delay", lambda **kwargs: dispatched.append(kwargs))
    dead, alive = (Submission.objects.create(phase=algorithm_phase, creator=algorithm_participant,
                                             status=Status.RUNNING) for _ in range(2))
    AlgorithmRun.objects.create(submission=dead, worker="remote:1:gone",
                                heartbeat_at=timezone.now() - timedelta(hours=1))
    AlgorithmRun.objects.create(submission=alive, worker="remote:1:here", heartbeat_at=timezone.now())
    client = runner.docker_client()
    containers = {
        submission.pk: client.containers.create("spinebench/hostile-sleep:latest", labels={
            runner.LABEL_MANAGED: "1", runner.LABEL_SUBMISSION: str(submission.pk), runner.LABEL_JOB: "0",
            **runner.scope_labels()})
        for submission in (dead, alive)
    }
    try:
        assert recover_remote() == {"requeued": 1, "containers_removed": 1}
        remaining = {container.id for container in client.containers.list(all=True)}
        assert containers[dead.pk].id not in remaining and containers[alive.pk].id in remaining
        assert dispatched == [{"submission_pk": dead.pk}]
        dead.refresh_from_db()
        assert dead.status == "queued"
    finally:
        for container in containers.values():
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - already removed by the recovery
                pass
