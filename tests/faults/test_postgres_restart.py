"""PostgreSQL restarted (`pg_ctl restart -m fast`) while a worker holds a submission inside its scoring transaction.
The server rolls that transaction back and drops the worker's connection; when the worker goes on, its queries fail,
the task errors out and the submission is left `scoring` with nothing of the lost transaction visible. The lease sweep
requeues it, the same worker (whose Django connection is replaced before its next task) scores it, and it ends
`succeeded` with exactly one Evaluation: final, never stuck, never scored twice.

A throwaway cluster owned by the test (tests/faults/postgres_cluster.py), never the machine's own on 5432; the site
and worker are the embedded ones (folder broker, which never redelivers, so only the sweep can bring the job back)."""

import re
import time

import pytest

from tests.harness.embedded_site import EmbeddedSite
from tests.platform.conftest import SCORING_STEP
from tests.platform.test_embedded_faults import SEED, STATE, SWEEP

from .conftest import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

SCORED_LINE = "succeeded in"  # Celery's line for a task that returned; the result follows it


def test_postgres_restart_inside_the_scoring_transaction_ends_scored_once(cluster, tmp_path):
    site = EmbeddedSite(tmp_path, DATABASE_URL=cluster.url("spinebench_faults"), SPINEBENCH_SCORING_LEASE_SECONDS="1")
    site.migrate()
    submitted = site.shell_json(SEED)
    assert submitted["status"] == "queued"
    state = STATE % {"pk": submitted["pk"]}
    pause = tmp_path / "pause"
    pause.write_text("hold")
    worker = site.worker(pause={SCORING_STEP: pause}, name="scorer")
    worker.start()
    try:
        wait_until(worker.reached, timeout=60, what="the worker to enter the scoring transaction")
        cluster.restart()  # the worker's transaction (row lock held) is rolled back, its connection closed
        pause.unlink()
        wait_until(lambda: "score_submission" in worker.tail(20000) and (
            "raised unexpected" in worker.tail(20000) or SCORED_LINE in worker.tail(20000)),
            timeout=60, what="the interrupted task to end")
        after_restart = site.shell_json(state)
        # Nothing of the lost transaction survived, and the submission is not final yet: its lease decides.
        assert after_restart == {"status": "scoring", "evaluations": 0, "error": ""}, worker.tail()
        time.sleep(1.5)  # past the 1 s lease
        assert site.shell_json(SWEEP) == {"requeued": 1, "failed": 0}
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=90, what="the requeued submission to finish")
        log = worker.tail(200000)
    finally:
        worker.stop()
    assert final == {"status": "succeeded", "evaluations": 1, "error": ""}, log
    assert log.count("'scored'") == 1, log  # one task returned "scored": scored once
    # The interrupted attempt failed loudly on the lost connection; it was not silently retried or half-committed.
    assert re.search(r"raised unexpected: (OperationalError|InterfaceError)", log), log
    assert site.shell_json(SWEEP) == {"requeued": 0, "failed": 0}  # nothing left for the sweep
