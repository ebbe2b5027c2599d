"""The container engine restarted while an algorithm runs (a daemon upgrade): the engine stops the container (after
waiting 10 s for it) and, for a few seconds, does not answer. The submission must end in a final state with a reason
(not stuck `running`), with no Evaluation unless it succeeded, and nothing left in the engine; the reason names the
engine, not the participant's algorithm. Only on the fault tests' own dockerd (docker_engine.py), never the shared
one."""

import pytest

from spinebench.algorithms.execution import ENGINE_ERROR

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


def test_dockerd_restart_during_a_run_ends_final_with_a_reason(own_engine, slower_archive, tmp_path):
    site = algorithm_site(tmp_path, own_engine)
    worker = site.worker(queues=["containers-cpu"], name="containers")
    worker.start()
    try:
        submitted = site.shell_json(SEED_ALGORITHM % {"archive": str(slower_archive), "output_mb": 8})
        state = STATE_ALGORITHM % {"pk": submitted["pk"]}
        wait_until(lambda: managed(own_engine, "--filter", "status=running"), timeout=180,
                   what="a running algorithm container", every=0.5)
        own_engine.restart()  # dockerd waits 10 s for the container (15 s to go), then kills it
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=300, what="the submission to finish", every=2)
    finally:
        worker.stop()
    log = (tmp_path / "containers.log").read_text(errors="replace")
    assert final["status"] in ("succeeded", "failed") and final["run_attempts"] == 1, final
    assert final["evaluations"] == (1 if final["status"] == "succeeded" else 0), final
    # The engine killed the container of spine_a (exit 137): a platform fault, reported as such, never as the
    # participant's algorithm failing ("exited with code 137", as it was before the runner told the two apart).
    assert final["status"] == "failed", final
    assert final["error"] == ENGINE_ERROR, final
    assert managed(own_engine, "-a") == [] and output_mounts_under(tmp_path) == [], log[-3000:]
    assert site.shell_json(RECOVER) == {"requeued": 0, "containers_removed": 0}
