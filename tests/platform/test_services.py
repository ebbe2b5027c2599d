"""Against real PostgreSQL and Redis with a real Celery worker subprocess: scoring through the broker, 20 concurrent
submissions against a limit of 3, and a worker SIGKILLed while scoring."""

import threading
from collections import Counter

import pytest
from django.db import connection

from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.services import SubmissionRefused, create_submission
from tests.conftest import wait_for

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def status_of(pk):
    return Submission.objects.get(pk=pk).status


def test_worker_scores_a_csv(celery_worker_process):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    submission = create_submission(phase=phase, user=user, upload=csv_upload(GOOD))
    wait_for(lambda: status_of(submission.pk) in ("succeeded", "failed"), what="the worker to score")
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    assert submission.evaluation.aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD), abs=1e-9)
    assert submission.evaluation.rank == 1


def test_twenty_concurrent_submissions_against_a_limit_of_three(celery_worker_process):
    assert connection.vendor == "postgresql"
    phase = PhaseFactory(submission_limit=3)
    user = RegistrationFactory(challenge=phase.challenge).user
    barrier = threading.Barrier(20)
    outcomes = []

    def attempt():
        try:
            barrier.wait()
            create_submission(phase=phase, user=user, upload=csv_upload(GOOD))
            outcomes.append("accepted")
        except SubmissionRefused as refusal:
            outcomes.append(f"{refusal.code}: {refusal}")
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = Counter(outcome.split(":")[0] for outcome in outcomes)
    assert counts == {"accepted": 3, "limit": 17}, outcomes
    assert all("Submission limit reached: 3 of 3" in o for o in outcomes if o.startswith("limit"))
    assert Submission.objects.filter(phase=phase).count() == 3
    wait_for(lambda: not Submission.objects.filter(phase=phase).exclude(status="succeeded").exists(), what="scoring")


def test_worker_killed_while_scoring_then_a_new_worker_scores_once(celery_worker_process):
    worker = celery_worker_process
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    worker.pause_file.write_text("hold")
    try:
        submission = create_submission(phase=phase, user=user, upload=csv_upload(GOOD))
        wait_for(lambda: status_of(submission.pk) == "scoring", what="scoring to start")
        # The worker now waits inside the scoring transaction, holding the row lock.
        with connection.cursor() as cursor:
            wait_for(lambda: _row_is_locked(cursor, submission.pk), what="the row lock")
        worker.kill()
    finally:
        worker.pause_file.unlink()
    assert status_of(submission.pk) == "scoring"
    assert not Evaluation.objects.filter(submission_id=submission.pk).exists()
    worker.start()
    wait_for(lambda: status_of(submission.pk) == "succeeded", timeout=180, what="the new worker to finish")
    assert Evaluation.objects.filter(submission_id=submission.pk).count() == 1
    assert Evaluation.objects.get(submission_id=submission.pk).rank == 1


def _row_is_locked(cursor, pk) -> bool:
    cursor.execute("SELECT 1 FROM submissions_submission WHERE id = %s FOR UPDATE SKIP LOCKED", [pk])
    return cursor.fetchone() is None
