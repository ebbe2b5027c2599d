"""A container worker SIGKILLed while an algorithm container runs, on the embedded broker (which never redelivers, so
the message dies with the worker): the submission stays `running` and the container outlives its worker, until the
lease sweep (`recover_container_jobs`) finds the run's heartbeat stale, sends it back to the queue and removes the
orphan container; the next worker reruns only the unfinished job and the submission is scored exactly once.

The containers run on a second dockerd owned by the test (tests/faults/docker_engine.py): the recovery removes every
SpineBench container of its engine that belongs to no live run of its database, which on a shared engine would
include other sites' containers."""

import json

import pytest

from tests.harness.embedded_site import EmbeddedSite

from .conftest import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.docker]

#: An algorithm phase on three synthetic spines (tests/containers' dataset) and one submission of ARCHIVE.
SEED_ALGORITHM = """
import json
from pathlib import Path
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from spinebench.challenges.models import Challenge, Phase, Registration
from spinebench.datasets.services import link_phase_datasets, register_dataset
from spinebench.submissions.services import create_submission
from tests.containers.conftest import write_spine_dataset
challenge = Challenge.objects.create(slug="faults", title="Faults")
folder = Path(settings.DATASETS_ROOT) / challenge.slug / "test"
write_spine_dataset(folder, split="test")
dataset = register_dataset(challenge=challenge, slug="test", folder=folder)
phase = Phase.objects.create(
    challenge=challenge, slug="algorithm", title="Algorithm", task="aasce-cobb",
    submission_kind=Phase.SubmissionKind.ALGORITHM, max_upload_bytes=2 << 30,
    case_time_limit_seconds=30, memory_limit_mb=256, cpu_limit=1.0, pids_limit=64, output_limit_mb=%(output_mb)d,
    submission_limit=None, extra_metrics=["mae_pt", "mae_mt", "mae_tl"])
link_phase_datasets(phase=phase, dataset=dataset)
user = get_user_model().objects.create_user("participant", password="correct-horse-battery")
Registration.objects.create(challenge=challenge, user=user, status=Registration.Status.APPROVED)
with open(%(archive)r, "rb") as handle:
    s = create_submission(phase=phase, user=user, upload=File(handle, name="algorithm.tar"))
s.refresh_from_db()
print("JSON " + json.dumps({"pk": s.pk, "status": s.status}))
"""

STATE_ALGORITHM = """
import json
from spinebench.algorithms.models import Job
from spinebench.submissions.models import Evaluation, Submission
s = Submission.objects.get(pk=%(pk)d)
run = getattr(s, "algorithm_run", None)
print("JSON " + json.dumps({
    "status": s.status, "error": s.error_message, "evaluations": Evaluation.objects.filter(submission=s).count(),
    "job_attempts": sorted(Job.objects.filter(run__submission=s).values_list("attempts", flat=True)),
    "run_attempts": run.attempts if run else None}))
"""

RECOVER = """
import json
from spinebench.algorithms.tasks import recover_container_jobs
print("JSON " + json.dumps(recover_container_jobs()))
"""


def managed(engine, *extra: str) -> list[str]:
    return engine.docker("ps", "-q", "--no-trunc", "--filter", "label=org.spinebench.managed=1", *extra).stdout.split()


def output_mounts_under(folder) -> list[str]:
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(str(folder))]


def algorithm_site(tmp_path, engine, **extra: str) -> EmbeddedSite:
    site = EmbeddedSite(tmp_path, DOCKER_HOST=engine.host, SPINEBENCH_CONTAINER_LEASE_SECONDS="3",
                        SPINEBENCH_OUTPUT_AREAS=str(tmp_path / "output-areas"), **extra)
    site.migrate()
    return site


def test_worker_killed_during_a_container_job_is_recovered_by_the_lease_sweep(own_engine, slow_archive, tmp_path):
    site = algorithm_site(tmp_path, own_engine)
    first = site.worker(queues=["containers-cpu"], name="first")
    first.start()  # its heartbeat names containers-cpu: the phase accepts uploads
    second = None
    try:
        submitted = site.shell_json(SEED_ALGORITHM % {"archive": str(slow_archive), "output_mb": 8})
        state = STATE_ALGORITHM % {"pk": submitted["pk"]}
        (orphan,) = wait_until(lambda: managed(own_engine, "--filter", "status=running"), timeout=180,
                               what="a running algorithm container", every=0.5)
        first.kill()
        assert managed(own_engine, "--filter", "status=running") == [orphan]  # it outlives its worker
        assert site.shell_json(state)["status"] == "running"
        second = site.worker(queues=["containers-cpu"], name="second")
        second.start()
        # Nothing comes back by itself on this broker; after the 3 s lease the sweep requeues it and removes the
        # orphan (the dead worker's heartbeat is stale, so its container belongs to no live run).
        wait_until(lambda: (outcome := site.shell_json(RECOVER))["requeued"] and outcome, timeout=30,
                   what="the sweep to requeue the run", every=1)
        final = wait_until(lambda: (now := site.shell_json(state))["status"] in ("succeeded", "failed") and now,
                           timeout=240, what="the requeued submission to finish", every=2)
    finally:
        for worker in (first, second):
            if worker is not None:
                worker.stop()
    log = (tmp_path / "second.log").read_text(errors="replace")
    assert final["status"] == "succeeded" and final["error"] == "", json.dumps(final) + log[-3000:]
    assert final["evaluations"] == 1
    # Only the job the dead worker was running ran again; the run itself was attempted twice.
    assert final["job_attempts"].count(2) == 1 and set(final["job_attempts"]) == {1, 2}, final
    assert final["run_attempts"] == 2
    assert orphan not in own_engine.docker("ps", "-aq", "--no-trunc").stdout.split()
    assert managed(own_engine, "-a") == [] and output_mounts_under(tmp_path) == []
    assert site.shell_json(RECOVER) == {"requeued": 0, "containers_removed": 0}
