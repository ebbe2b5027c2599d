"""The site's side of one algorithm submission: claim it (row lock + status check + a worker lease), validate its
archive, plan one job per case (or one batch job), requeue or fail it after engine faults, score its predictions with
the platform's `score_predictions`, and recover runs of dead workers. The container side (load the image, run the
jobs through `runner`, report them) is job_worker.py, which reaches this module through a job client: directly on
the site's hosts (local_client.py), through the worker-token API from other hosts (worker_api.py, jobs.py).

Never stuck: an archive that cannot be validated or loaded, an engine that does not answer, and any unexpected error
end the submission `failed` with a reason at once. An engine that goes away during a run (restarted, or its
connection lost) is the platform's fault, not the algorithm's: the submission goes back to its queue and is tried
again after SPINEBENCH_ENGINE_RETRY_SECONDS (only its unfinished jobs run again), at most SPINEBENCH_MAX_REQUEUES
times (the workers app's Requeue counter), then fails with the engine's reason.

The image is loaded from a stream without any tag from the archive (archives.untagged_stream) and referred to by its id
only. Each run works in its own folder, named by the run's UUID, never by the submission id (ids are reused by a fresh
database, and a reused folder would merge old predictions into the new run). On phases whose test data are hidden, exit
codes are withheld from the reasons.

Idempotent: every step checks the status under a row lock. A worker that dies leaves the submission `running` with a
heartbeat that stops; the redelivered message (or the recovery sweep) finds the lease stale, removes the dead
attempt's containers by label, requeues the unfinished jobs and finishes; jobs already succeeded are not rerun and
the submission is scored once.
"""

from __future__ import annotations

import logging
import os
import socket
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import docker
import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from spinebench.submissions.models import Submission
from spinebench.submissions.scoring import score_predictions
from spinebench.submissions.services import dispatch
from spinebench.submissions.status import ACTIVE, Status, transition
from spinebench.submissions.uploads import zip_limits
from spinebench.uploads.local_cache import CacheError, local_copy
from spinebench.uploads.models import StoredUpload
from spinebench.workers.services import note_requeue

from . import runner
from .archives import ArchiveError, inspect_archive
from .job_worker import INTERNAL_ERROR, engine_load  # noqa: F401 - re-exported (the job service, benchmarks)
from .models import AlgorithmImage, AlgorithmRun, ContainerConfig, Job
from .outputs import run_predictions

logger = logging.getLogger(__name__)

NO_ENGINE = (
    "No container engine answers on the worker that took this submission, so its algorithm cannot run; "
    "the organizers have been told. Submit again later."
)
ENGINE_LOST = (
    "The container engine went away while running this submission (restarted or unreachable) each time it was "
    "tried ({tries} times), so it was not finished; the organizers have been told. Submit again later."
)
#: Requeue counter kind (spinebench.workers) of submissions sent back to their queue after an engine fault.
ENGINE_FAULT_REQUEUES = "algorithm-engine-fault"


def lease_seconds() -> float:
    """A run whose heartbeat is older than this belongs to a dead worker."""
    return float(settings.SPINEBENCH_CONTAINER_LEASE_SECONDS)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def run_root(run: AlgorithmRun) -> Path:
    """The run's own folder: the submission id for people, the run's UUID so that no two runs ever share it."""
    return Path(settings.MEDIA_ROOT) / "algorithm-runs" / f"{run.submission_id}-{run.key.hex}"


def predictions_dir(submission_pk: int) -> Path:
    return run_root(AlgorithmRun.objects.get(submission_id=submission_pk)) / "predictions"


def stored_predictions(submission: Submission) -> AbstractContextManager[Path]:
    """The run's predictions for a re-score: its folder on this disk, or its stored outputs (outputs.py)."""
    run = AlgorithmRun.objects.get(submission_id=submission.pk)
    return run_predictions(run, folder=run_root(run) / "predictions", limits=zip_limits(submission.phase))


def lease_is_stale(run: AlgorithmRun, now=None) -> bool:
    now = now or timezone.now()
    return run.heartbeat_at is None or now - run.heartbeat_at > timedelta(seconds=lease_seconds())


# steps ----------------------------------------------------------------------------------------------------------


def requeue_after_engine_fault(submission_pk: int) -> str:
    """The engine went away during the run: back to `queued` for the caller to send again later ("requeued"), or
    `failed` with the reason once it happened more than SPINEBENCH_MAX_REQUEUES times ("failed")."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_pk).first()
        if submission is None or submission.status != Status.RUNNING:
            return f"nothing to do: {submission.status if submission else 'gone'}"
        count = note_requeue(kind=ENGINE_FAULT_REQUEUES, object_id=submission_pk)
        if count > settings.SPINEBENCH_MAX_REQUEUES:
            submission.finished_at = timezone.now()
            submission.save(update_fields=["finished_at"])
            transition(submission, Status.FAILED, error=ENGINE_LOST.format(tries=count))
            return "failed"
        transition(submission, Status.QUEUED)
    logger.warning("submission %s requeued after a container engine fault (%s)", submission_pk, count)
    return "requeued"


def claim_run(submission_pk: int, *, worker: str | None = None) -> str:
    """Take the run's lease for `worker` (default: this process) and move the submission to `running`."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().filter(pk=submission_pk).first()
        if submission is None:
            return "gone"
        if submission.status not in (Status.QUEUED, Status.RUNNING):
            return f"nothing to do: {submission.status}"
        run, _ = AlgorithmRun.objects.get_or_create(submission=submission)
        run = AlgorithmRun.objects.select_for_update().get(pk=run.pk)
        me = worker or worker_identity()
        if submission.status == Status.RUNNING and run.worker != me and not lease_is_stale(run):
            return "busy"
        if submission.status == Status.QUEUED:
            submission.started_at = submission.started_at or timezone.now()
            submission.save(update_fields=["started_at"])
            transition(submission, Status.RUNNING)
        run.worker, run.heartbeat_at, run.attempts = me, timezone.now(), run.attempts + 1
        run.save(update_fields=["worker", "heartbeat_at", "attempts"])
    return "claimed"


def validated_image(submission_pk: int) -> AlgorithmImage | None:
    """Validate the archive (first time only; a redelivered run keeps its image); None after a refusal."""
    run = AlgorithmRun.objects.select_related("image", "submission__phase").get(submission_id=submission_pk)
    if run.image is not None:
        return run.image
    submission = run.submission
    config = ContainerConfig.for_phase(submission.phase)
    if not submission.algorithm_archive:
        fail_if_running(submission_pk, "This submission has no algorithm archive.")
        return None
    try:
        described = inspect_archive(
            local_copy(submission.algorithm_archive, sha256=recorded_sha256(submission)),
            max_image_bytes=config.image_size_limit_mb << 20,
        )
        if described.archive_sha256 != (recorded_sha256(submission) or described.archive_sha256):
            raise ArchiveError("the stored archive does not match the SHA-256 recorded when it was uploaded")
    except (ArchiveError, CacheError) as error:
        run.validation = [["archive", False, str(error)]]
        run.save(update_fields=["validation"])
        fail_if_running(submission_pk, f"Archive refused: {error}")
        return None
    image, created = AlgorithmImage.objects.get_or_create(
        image_id=described.image_id,
        defaults=dict(
            archive_sha256=described.archive_sha256,
            creator=submission.creator,
            repo_tags=described.repo_tags,
            user=described.user[:128],
            uid=described.uid,
            gid=described.gid,
            architecture=described.architecture,
            os=described.os,
            size_bytes=described.size_bytes,
        ),
    )
    if not created:
        AlgorithmImage.objects.filter(pk=image.pk).update(
            uploads=F("uploads") + 1, uid=described.uid, gid=described.gid
        )
        image.refresh_from_db()
    run.image, run.image_reused = image, not created
    run.validation = [list(check) for check in described.checks]
    run.save(update_fields=["image", "image_reused", "validation"])
    return image


def recorded_sha256(submission: Submission) -> str | None:
    """The archive's digest spinebench.uploads computed while it arrived (None for a file stored another way):
    validation and loading both check the stored file against it."""
    return StoredUpload.objects.filter(storage_name=submission.algorithm_archive.name).values_list(
        "sha256", flat=True
    ).first()


def planned_jobs(run: AlgorithmRun, config: ContainerConfig) -> list[tuple[Job, Path, list[str] | None]]:
    """(job, host input folder, case ids for batch mode or None) for every job of the run, creating missing rows."""
    dataset = run.submission.phase.dataset
    cases = list(dataset.cases.order_by("case_id"))
    if config.mode == ContainerConfig.Mode.BATCH:
        job, _ = Job.objects.get_or_create(run=run, case_id="")
        return [
            (job, Path(cases[0].input_dir).parent if cases else dataset.root / "inputs", [c.case_id for c in cases])
        ]
    return [(Job.objects.get_or_create(run=run, case_id=case.case_id)[0], Path(case.input_dir), None) for case in cases]


def score(submission_pk: int) -> str:
    with transaction.atomic():
        submission = (
            Submission.objects.select_for_update(of=("self",)).select_related("phase__dataset_link__dataset").get(pk=submission_pk)
        )
        if submission.status != Status.RUNNING:
            return f"nothing to do: {submission.status}"
        transition(submission, Status.SCORING)
        evaluation = score_predictions(submission, predictions_dir(submission_pk))
    return "scored" if evaluation else "failed"


def fail_if_running(submission_pk: int, reason: str) -> None:
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_pk)
        if submission.status not in ACTIVE:
            return
        submission.finished_at = timezone.now()
        submission.save(update_fields=["finished_at"])
        transition(submission, Status.FAILED, error=reason)


# stopping and recovery ------------------------------------------------------------------------------------------


def stop_submission_containers(submission_pk: int, *, client: docker.DockerClient | None = None) -> int:
    """Kill and remove every container of a submission and end its unfinished jobs (cancel, fail, sweep)."""
    for job in Job.objects.filter(run__submission_id=submission_pk, status__in=ACTIVE):
        transition(job, Status.CANCELLED, error="stopped with its submission")
    client = client or runner.docker_client()
    return runner.remove_managed_containers(client, labels={runner.LABEL_SUBMISSION: str(submission_pk)})


def requeue_stale_runs() -> int:
    """Send every run whose worker died (stale lease) back to its queue; how many."""
    requeued = 0
    now = timezone.now()
    for run in AlgorithmRun.objects.filter(submission__status=Status.RUNNING).select_related("submission"):
        if not lease_is_stale(run, now):
            continue
        with transaction.atomic():
            submission = Submission.objects.select_for_update(skip_locked=True).filter(pk=run.submission_id).first()
            fresh = AlgorithmRun.objects.get(pk=run.pk)
            if submission is None or submission.status != Status.RUNNING or not lease_is_stale(fresh, now):
                continue
            transition(submission, Status.QUEUED)
            dispatch(submission)  # the pipeline the algorithms app registered; this module never imports its tasks
            requeued += 1
    return requeued


def live_container_owners() -> tuple[set[str], set[str]]:
    """(submissions whose run a live worker holds, submissions being scored): the containers labelled with one of
    them belong to live work; every other managed container of this site is an orphan."""
    now = timezone.now()
    live = {
        str(run.submission_id)
        for run in AlgorithmRun.objects.filter(submission__status=Status.RUNNING)
        if not lease_is_stale(run, now)
    }
    scoring = {str(pk) for pk in Submission.objects.filter(status=Status.SCORING).values_list("pk", flat=True)}
    return live, scoring


def remove_orphans(client: docker.DockerClient, *, live: set[str], scoring: set[str]) -> int:
    """Remove this site's containers on `client`'s engine that belong to no live run and no evaluation in progress."""
    return runner.remove_managed_containers(
        client,
        keep=lambda labels: (
            labels.get(runner.LABEL_SUBMISSION) in live or labels.get(runner.LABEL_EVALUATION) in scoring
        ),
    )


def recover(*, client: docker.DockerClient | None = None) -> dict[str, int]:
    """The periodic recovery: requeue runs whose worker died (stale lease) and remove containers that belong to no
    live run (their submission finished, or the worker holding it died)."""
    requeued = requeue_stale_runs()
    live, scoring = live_container_owners()
    try:
        client = client or runner.docker_client()
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        logger.warning("recovery: no container engine answers; orphan containers are removed at a later sweep")
        return {"requeued": requeued, "containers_removed": 0}
    return {"requeued": requeued, "containers_removed": remove_orphans(client, live=live, scoring=scoring)}
