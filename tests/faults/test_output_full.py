"""An algorithm that writes until its /output area is full (the kernel answers ENOSPC at the tmpfs cap), through the
whole platform: worker, real engine, submission. It must end `failed` with the cap as its reason, with no
Evaluation, no container and no output mount left behind. Runs on the fault tests' own dockerd (a worker removes
containers by submission number, which another site's database on a shared engine could also use)."""

import pytest

from .conftest import wait_until
from .test_container_worker_killed import (
    SEED_ALGORITHM,
    STATE_ALGORITHM,
    algorithm_site,
    managed,
    output_mounts_under,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.docker]


def test_algorithm_filling_its_output_area_fails_with_the_cap_as_reason(own_engine, hostile_archive, tmp_path):
    site = algorithm_site(tmp_path, own_engine)
    worker = site.worker(queues=["containers-cpu"], name="containers")
    worker.start()
    try:
        submitted = site.shell_json(SEED_ALGORITHM % {"archive": str(hostile_archive("huge-output")), "output_mb": 8})
        state = STATE_ALGORITHM % {"pk": submitted["pk"]}
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=240, what="the submission to finish", every=2)
    finally:
        worker.stop()
    assert final["status"] == "failed", final
    assert "filled /output past its cap of 8 MiB" in final["error"], final
    assert final["evaluations"] == 0
    assert managed(own_engine, "-a") == [] and output_mounts_under(tmp_path) == []
