"""The container engine restarted while an algorithm runs (a daemon upgrade): the engine stops the container (after
waiting 10 s for it) and, for a few seconds, does not answer. That is the platform's fault, not the participant's:
the submission goes back to its queue (counted by the workers app's Requeue counter), is tried again once the engine
is back, reruns only the interrupted job and succeeds, scored once, with nothing left in the engine. Past
SPINEBENCH_MAX_REQUEUES engine faults it fails with the engine's reason instead. Only on the fault tests' own dockerd
(docker_engine.py), never the shared one."""

import json

import pytest

from .conftest import wait_until
from .test_container_worker_killed import (
    RECOVER,
    SEED_ALGORITHM,
    STATE_ALGORITHM,
    algorithm_site,
    managed,
    output_mounts_under,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.docker]

REQUEUES = """
import json
from spinebench.algorithms.execution import ENGINE_FAULT_REQUEUES
from spinebench.workers.services import requeue_count
print("JSON " + json.dumps(requeue_count(kind=ENGINE_FAULT_REQUEUES, object_id=%(pk)d)))
"""


def restarted_during_a_run(site, engine, archive, *, restarts: int):
    """Submit, restart the engine `restarts` times while a container runs (waiting for the requeued run's next
    container each time) and return the final state, the requeue count and the worker's log."""
    worker = site.worker(queues=["containers-cpu"], name="containers")
    worker.start()
    try:
        submitted = site.shell_json(SEED_ALGORITHM % {"archive": str(archive), "output_mb": 8})
        state = STATE_ALGORITHM % {"pk": submitted["pk"]}
        for _ in range(restarts):
            wait_until(lambda: managed(engine, "--filter", "status=running"), timeout=180,
                       what="a running algorithm container", every=0.5)
            engine.restart()  # dockerd waits 10 s for the container (15 s to go), then kills it
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=420, what="the submission to finish", every=2)
    finally:
        worker.stop()
    log = (site.root / "containers.log").read_text(errors="replace")
    return final, site.shell_json(REQUEUES % {"pk": submitted["pk"]}), log


def test_dockerd_restart_during_a_run_requeues_and_then_succeeds(own_engine, slower_archive, tmp_path):
    site = algorithm_site(tmp_path, own_engine, SPINEBENCH_ENGINE_RETRY_SECONDS="2")
    final, requeues, log = restarted_during_a_run(site, own_engine, slower_archive, restarts=1)
    assert final["status"] == "succeeded" and final["error"] == "", json.dumps(final) + log[-3000:]
    assert final["evaluations"] == 1 and final["run_attempts"] == 2 and requeues == 1, final
    # Only the job the restart interrupted ran again.
    assert final["job_attempts"].count(2) == 1 and set(final["job_attempts"]) == {1, 2}, final
    assert managed(own_engine, "-a") == [] and output_mounts_under(tmp_path) == [], log[-3000:]
    assert site.shell_json(RECOVER) == {"requeued": 0, "containers_removed": 0}


def test_dockerd_restarts_past_the_requeue_limit_fail_with_the_engines_reason(own_engine, slower_archive, tmp_path):
    site = algorithm_site(tmp_path, own_engine, SPINEBENCH_ENGINE_RETRY_SECONDS="2", SPINEBENCH_MAX_REQUEUES="1")
    final, requeues, log = restarted_during_a_run(site, own_engine, slower_archive, restarts=2)
    assert final["status"] == "failed" and final["evaluations"] == 0, json.dumps(final) + log[-3000:]
    assert final["error"].startswith("The container engine went away while running this submission"), final
    assert "(2 times)" in final["error"] and requeues == 2 and final["run_attempts"] == 2, final
    assert managed(own_engine, "-a") == [] and output_mounts_under(tmp_path) == [], log[-3000:]
