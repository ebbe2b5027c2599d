"""Faults on the embedded default (SQLite + the folder broker, which never redelivers a message): a worker SIGKILLed
inside the scoring transaction loses its message with it; the submission stays `scoring` (the database rolled back
what the dead worker did) until the lease sweep requeues it, and the next worker scores it exactly once."""

import time

import pytest

from tests.harness.embedded_site import EmbeddedSite

from .conftest import SCORING_STEP

pytestmark = pytest.mark.slow

SEED = """
import json
from django.core.files.uploadedfile import SimpleUploadedFile
from spinebench.submissions.services import create_submission
from tests.platform.aasce_data import predictions_csv
from tests.platform.factories import PhaseFactory, RegistrationFactory
phase = PhaseFactory()
user = RegistrationFactory(challenge=phase.challenge).user
good = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
s = create_submission(phase=phase, user=user, upload=SimpleUploadedFile("p.csv", predictions_csv(good)))
s.refresh_from_db()
print("JSON " + json.dumps({"pk": s.pk, "status": s.status}))
"""

STATE = """
import json
from spinebench.submissions.models import Evaluation, Submission
s = Submission.objects.get(pk=%(pk)d)
print("JSON " + json.dumps({"status": s.status, "evaluations": Evaluation.objects.filter(submission=s).count(),
                            "error": s.error_message}))
"""

SWEEP = """
import json
from spinebench.submissions.tasks import sweep_stale_submissions
print("JSON " + json.dumps(sweep_stale_submissions()))
"""


def test_worker_killed_while_scoring_is_requeued_by_the_sweep_and_scored_once(tmp_path):
    site = EmbeddedSite(tmp_path, SPINEBENCH_SCORING_LEASE_SECONDS="1")
    site.migrate()
    submitted = site.shell_json(SEED)
    assert submitted["status"] == "queued"
    state = STATE % {"pk": submitted["pk"]}
    pause = tmp_path / "pause"
    pause.write_text("hold")
    first = site.worker(pause={SCORING_STEP: pause}, name="first")
    first.start()
    try:
        deadline = time.monotonic() + 60
        while not first.reached() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert first.reached(), first.tail()
        first.kill()  # inside the scoring transaction, SQLite's write lock held
    finally:
        pause.unlink()
        first.kill()
    assert site.shell_json(state) == {"status": "scoring", "evaluations": 0, "error": ""}
    assert not list((site.var / "broker" / "queue").glob("*.msg"))  # the message died with its worker

    second = site.worker(name="second")
    second.start()
    try:
        time.sleep(3)
        assert site.shell_json(state)["status"] == "scoring"  # nothing comes back by itself on this broker
        assert site.shell_json(SWEEP) == {"requeued": 1, "failed": 0}
        deadline = time.monotonic() + 60
        while (now := site.shell_json(state))["status"] != "succeeded" and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        second.stop()
    assert now == {"status": "succeeded", "evaluations": 1, "error": ""}, second.tail()


NO_ENGINE_CHECK = """
import json
from django.core.files.uploadedfile import SimpleUploadedFile
from spinebench.submissions.models import Submission
from spinebench.submissions.services import SubmissionRefused, create_submission
from spinebench.workers.models import WorkerHeartbeat
from spinebench.workers.services import phase_unserved_message
from tests.platform.factories import PhaseFactory, RegistrationFactory
phase = PhaseFactory(submission_kind="algorithm")
user = RegistrationFactory(challenge=phase.challenge).user
try:
    create_submission(phase=phase, user=user, upload=SimpleUploadedFile("a.tar", b"not an image"))
    refusal = None
except SubmissionRefused as error:
    refusal = [error.code, str(error)]
print("JSON " + json.dumps({"beats": {b.hostname: b.queues for b in WorkerHeartbeat.objects.all()},
                            "message": phase_unserved_message(phase), "refusal": refusal,
                            "submissions": Submission.objects.count()}))
"""


def test_without_a_container_engine_algorithm_uploads_are_refused_at_once(tmp_path):
    """The `make run` default on a host with no engine: the worker consumes containers-cpu but cannot run a
    container, so its heartbeat leaves that queue out and algorithm phases refuse uploads instead of queuing them
    for a run that can only fail."""
    site = EmbeddedSite(tmp_path, DOCKER_HOST=f"unix://{tmp_path / 'no-engine.sock'}")
    site.migrate()
    worker = site.worker(queues=["scoring", "containers-cpu"], name="scoring")
    worker.start()
    try:
        state = site.shell_json(NO_ENGINE_CHECK)
    finally:
        worker.stop()
    assert state["beats"] == {"scoring@test": ["scoring"]}, worker.tail()
    assert state["message"].startswith("No CPU container worker is running for this phase right now")
    assert state["refusal"] == ["no_worker", state["message"]]
    assert state["submissions"] == 0
