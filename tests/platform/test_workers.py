"""Worker heartbeats (spinebench.workers): when a queue counts as served, what an algorithm phase says and does while
no live worker serves its container queue, and the lease sweep that requeues or fails submissions a dead worker left
in `queued`/`scoring` (the folder broker never redelivers)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from spinebench.accounts.tokens import issue_token
from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.services import SubmissionRefused, create_submission
from spinebench.submissions.status import Status, transition
from spinebench.submissions.tasks import sweep_stale_submissions
from spinebench.workers import services
from spinebench.workers.models import Requeue, WorkerHeartbeat

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
UNSERVED = "No CPU container worker is running for this phase right now, so algorithm uploads are closed"


@pytest.fixture
def workers_mode():
    """As in production: tasks go to workers (not run in-process), so queues are served only by heartbeats."""
    from spinebench.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = False
    yield
    app.conf.task_always_eager = previous


def beat(queues, *, seconds_ago: float = 0, hostname="scoring@host"):
    return services.record_heartbeat(
        hostname=hostname, queues=queues, pid=123, version="1", now=timezone.now() - timedelta(seconds=seconds_ago)
    )


def test_a_queue_is_served_only_by_a_recent_heartbeat_of_a_worker_consuming_it(workers_mode):
    assert not services.queue_is_served("containers-cpu")
    beat(["scoring", "containers-cpu"], seconds_ago=61)
    assert not services.queue_is_served("containers-cpu")  # default window: 60 s
    assert services.queue_is_served("containers-cpu", within_s=120)
    beat(["scoring", "containers-cpu"], seconds_ago=5)
    assert services.queue_is_served("containers-cpu") and services.queue_is_served("scoring")
    assert not services.queue_is_served("containers-gpu") and not services.queue_is_served("baselines")
    assert WorkerHeartbeat.objects.count() == 1  # renewed, not duplicated
    services.record_shutdown(hostname="scoring@host")
    assert not services.queue_is_served("containers-cpu")  # stopped cleanly: gone at once, not after 60 s


def test_a_restarted_worker_clears_its_stopped_mark(workers_mode):
    first = timezone.now() - timedelta(minutes=5)
    services.record_heartbeat(hostname="w@h", queues=["baselines"], started=first)
    services.record_shutdown(hostname="w@h")
    services.record_heartbeat(hostname="w@h", queues=["baselines"], started=timezone.now())
    assert services.queue_is_served("baselines")


def test_a_heartbeat_needs_a_sane_hostname():
    for hostname in ("", "x" * 256):
        with pytest.raises(ValueError, match="1 to 255 characters"):
            services.record_heartbeat(hostname=hostname, queues=["scoring"])
    assert not WorkerHeartbeat.objects.exists()


def test_in_process_tasks_serve_every_queue(eager_tasks):
    assert services.queue_is_served("containers-gpu")  # tasks run at dispatch: the process itself serves them


def test_unserved_algorithm_phase_says_so_and_refuses_uploads(client, workers_mode):
    phase = PhaseFactory(submission_kind="algorithm")
    user = RegistrationFactory(challenge=phase.challenge).user
    with pytest.raises(SubmissionRefused, match=UNSERVED) as refusal:
        create_submission(phase=phase, user=user, upload=csv_upload(name="algorithm.tar"))
    assert refusal.value.code == "no_worker"
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(name='test', user=user).secret}")
    response = api.post(
        f"/api/phases/{phase.pk}/submissions/", {"file": csv_upload(name="algorithm.tar")}, format="multipart"
    )
    assert response.status_code == 503 and UNSERVED in response.json()["detail"]
    assert response.json()["code"] == "no_worker"
    assert not Submission.objects.exists()
    body = api.get(f"/api/phases/{phase.pk}/").json()
    assert body["accepting_uploads"] is False and UNSERVED in body["not_accepting_reason"]
    page = client.get(phase.get_absolute_url()).content.decode()
    assert 'id="queue-status"' in page and UNSERVED in page
    client.force_login(user)
    form = client.get(reverse("submissions:create", args=[phase.challenge.slug, phase.slug]))
    assert form.status_code == 200 and UNSERVED in form.content.decode()

    beat(["scoring", "containers-cpu"])
    assert 'id="queue-status"' not in client.get(phase.get_absolute_url()).content.decode()
    body = api.get(f"/api/phases/{phase.pk}/").json()
    assert body["accepting_uploads"] is True and body["not_accepting_reason"] == ""


def test_gpu_phase_needs_a_gpu_worker(workers_mode):
    phase = PhaseFactory(submission_kind="algorithm", requires_gpu=True)
    beat(["scoring", "containers-cpu"])
    assert "No GPU container worker" in services.phase_unserved_message(phase)
    beat(["containers-gpu"], hostname="gpu@host")
    assert services.phase_unserved_message(phase) == ""


def test_csv_phases_never_refuse_for_want_of_a_worker(workers_mode):
    phase = PhaseFactory()
    assert services.phase_queue(phase) is None and services.phase_unserved_message(phase) == ""


# the lease sweep ---------------------------------------------------------------------------------------------------


def stale(submission: Submission, status: str, *, seconds: int) -> Submission:
    """Put `submission` in `status`, last changed `seconds` ago (as a dead worker leaves it)."""
    if submission.status != status:
        transition(submission, status)
    Submission.objects.filter(pk=submission.pk).update(status_changed_at=timezone.now() - timedelta(seconds=seconds))
    submission.refresh_from_db()
    return submission


@pytest.fixture
def queued(phase, participant, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # the dispatch message is lost with its worker
        submission = create_submission(phase=phase, user=participant, upload=csv_upload(GOOD))
    assert submission.status == "queued"
    return submission


def test_a_submission_left_in_scoring_is_requeued_and_scored_once(
    queued, settings, eager_tasks, django_capture_on_commit_callbacks
):
    stale(queued, Status.SCORING, seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        assert sweep_stale_submissions() == {"requeued": 1, "failed": 0}
    queued.refresh_from_db()
    assert queued.status == "succeeded", queued.error_message
    assert Evaluation.objects.filter(submission=queued).count() == 1
    assert queued.evaluation.aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD), abs=1e-9)
    assert Requeue.objects.get(kind="submission", object_id=queued.pk).count == 1


def test_a_lost_queued_message_is_sent_again_once_per_lease(queued, settings, django_capture_on_commit_callbacks):
    stale(queued, Status.QUEUED, seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS + 1)
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        assert sweep_stale_submissions() == {"requeued": 1, "failed": 0}
        assert sweep_stale_submissions() == {"requeued": 0, "failed": 0}  # the new message gets a full lease
    assert len(dispatched) == 1
    queued.refresh_from_db()
    assert queued.status == "queued"


def test_waiting_in_a_long_queue_is_never_failed_by_the_lease_sweep(
    queued, settings, django_capture_on_commit_callbacks
):
    settings.SPINEBENCH_MAX_REQUEUES = 1
    for _ in range(4):
        stale(
            Submission.objects.get(pk=queued.pk), Status.QUEUED, seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS + 1
        )
        with django_capture_on_commit_callbacks(execute=False):
            assert sweep_stale_submissions() == {"requeued": 1, "failed": 0}
    assert Submission.objects.get(pk=queued.pk).status == "queued"


def test_a_submission_within_its_lease_is_left_alone(queued, settings, django_capture_on_commit_callbacks):
    stale(queued, Status.SCORING, seconds=settings.SPINEBENCH_SCORING_LEASE_SECONDS - 30)
    with django_capture_on_commit_callbacks(execute=False) as dispatched:
        assert sweep_stale_submissions() == {"requeued": 0, "failed": 0}
    assert dispatched == [] and Submission.objects.get(pk=queued.pk).status == "scoring"


def test_a_job_that_keeps_losing_its_worker_is_failed_with_the_reason(
    queued, settings, django_capture_on_commit_callbacks
):
    settings.SPINEBENCH_MAX_REQUEUES = 2
    lease = settings.SPINEBENCH_SCORING_LEASE_SECONDS
    for expected in ({"requeued": 1, "failed": 0}, {"requeued": 1, "failed": 0}, {"requeued": 0, "failed": 1}):
        stale(Submission.objects.get(pk=queued.pk), Status.SCORING, seconds=lease + 1)
        with django_capture_on_commit_callbacks(execute=False):
            assert sweep_stale_submissions() == expected
    queued.refresh_from_db()
    assert queued.status == "failed" and queued.finished_at is not None
    assert queued.error_message.startswith("Processing stopped 3 times without finishing")


def test_worker_processes_cap_torch_threads(settings):
    torch = pytest.importorskip("torch")
    from spinebench.workers.celery_hooks import _cap_torch_threads

    before = torch.get_num_threads()
    settings.SPINEBENCH_TORCH_THREADS = 1 if before != 1 else 2
    try:
        _cap_torch_threads()
        assert torch.get_num_threads() == settings.SPINEBENCH_TORCH_THREADS
    finally:
        torch.set_num_threads(before)


def test_container_queues_count_only_while_the_workers_engine_answers(monkeypatch):
    from spinebench.algorithms import runner
    from spinebench.workers.celery_hooks import served_queues

    monkeypatch.setattr(runner, "engine_available", lambda: False)
    assert served_queues(["scoring", "containers-cpu", "containers-gpu"]) == ["scoring"]
    assert served_queues(["baselines"]) == ["baselines"]
    monkeypatch.setattr(runner, "engine_available", lambda: True)
    assert served_queues(["containers-cpu", "scoring"]) == ["containers-cpu", "scoring"]


def test_taken_messages_of_the_folder_broker_are_pruned_after_a_day(settings, tmp_path):
    import os
    import time

    from spinebench.workers import broker

    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(tmp_path / "queue"),
        "data_folder_out": str(tmp_path / "queue"),
        "control_folder": str(tmp_path / "control"),
        "processed_folder": str(tmp_path / "processed"),
    }
    broker.ensure_folders()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control", "processed", "queue"]
    old, new = tmp_path / "processed" / "1_a.scoring.msg", tmp_path / "processed" / "2_b.scoring.msg"
    old.write_text("{}")
    new.write_text("{}")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    assert broker.prune_processed() == 1
    assert not old.exists() and new.exists()
