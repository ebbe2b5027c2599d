"""What a container worker asks of the site while it runs one algorithm submission, answered from the database and
the storage. The same functions serve both kinds of worker: a local one calls them through `LocalJobClient`
(local_client.py), a remote host through the worker-token API (worker_api.py, `RemoteJobClient`); the pipeline the
worker runs (job_worker.py) is one code path for both.

A job description names its files through `refs`: local paths for a worker on this host, signed, expiring download
URLs for a remote one (signed_files.py). Every call after the claim names the worker that holds the run's lease
(`worker`); a call from a worker that lost it (its lease lapsed and another worker took the run) is refused with
LeaseLost and changes nothing, so a worker that was presumed dead can never finish a run twice.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from spinebench.challenges import registry
from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status, transition
from spinebench.uploads.local_cache import local_copy
from spinebench.uploads.stored_files import stored_sha256
from spinebench.workers.services import requeue_count

from . import execution, runner
from .job_worker import LeaseLost
from .models import AlgorithmRun, ContainerConfig, Job
from .outputs import store_outputs

logger = logging.getLogger(__name__)

#: Longest reason text a worker may report (the reasons are the sandbox's own sentences).
REASON_MAX = 2000
LOG_TAIL_MAX = 64_000


class JobRefused(ValueError):
    """The worker's report cannot be taken as sent (the message says why)."""


@dataclass(frozen=True)
class Refs:
    """How a description names files: `file(storage name, sha256)` for a stored file, `folder(path)` for a folder of
    the site's disk (a case's inputs, a ground truth) and `path(path)` for one file of it (a manifest)."""

    file: Callable[[str, str], dict]
    folder: Callable[[Path], dict]
    path: Callable[[Path], dict]


LOCAL_REFS = Refs(file=lambda name, sha256: {"path": str(local_copy(name, sha256=sha256)), "sha256": sha256},
                  folder=lambda path: {"path": str(path)}, path=lambda path: {"path": str(path)})


@dataclass
class JobReport:
    """What a worker reports of one container run (runner.RunResult's fields, and whether the run stopped because
    the submission left `running`)."""

    succeeded: bool
    reason: str = ""
    exit_code: int | None = None
    duration_s: float = 0.0
    log_tail: list[str] = dataclasses.field(default_factory=list)
    stopped: bool = False

    @classmethod
    def from_payload(cls, payload: dict) -> JobReport:
        try:
            exit_code = payload.get("exit_code")
            report = cls(succeeded=bool(payload["succeeded"]), reason=str(payload.get("reason") or "")[:REASON_MAX],
                         exit_code=None if exit_code is None else int(exit_code),
                         duration_s=float(payload.get("duration_s") or 0.0),
                         log_tail=[str(line) for line in payload.get("log_tail") or []],
                         stopped=bool(payload.get("stopped")))
        except (KeyError, TypeError, ValueError) as error:
            raise JobRefused(f"the job report is malformed ({error})") from None
        if report.succeeded and (report.reason or report.stopped):
            raise JobRefused("a succeeded job has no reason and was not stopped")
        if not report.succeeded and not report.reason:
            raise JobRefused("a failed job needs its reason")
        return report


def archive_sha256(submission: Submission) -> str:
    """The archive's digest as recorded at upload, or computed from the stored file (an archive stored another way)."""
    return execution.recorded_sha256(submission) or stored_sha256(submission.algorithm_archive.name)


# the calls of a worker, in the order it makes them ------------------------------------------------------------------


def claim(submission_pk: int, *, worker: str, refs: Refs = LOCAL_REFS) -> dict:
    """Take the run's lease and describe what to run: {"outcome": "claimed", "job": {...}}; otherwise the outcome
    ("busy" with "retry_after" seconds while a live worker holds it, "failed" after a refusal, "nothing to do: ...")."""
    outcome = execution.claim_run(submission_pk, worker=worker)
    if outcome == "busy":
        return {"outcome": "busy", "retry_after": execution.lease_seconds()}
    if outcome != "claimed":
        return {"outcome": outcome}
    try:
        return _describe(submission_pk, refs=refs)
    except Exception:  # noqa: BLE001 - whatever went wrong, the submission must not stay running
        logger.exception("unexpected error describing submission %s", submission_pk)
        execution.fail_if_running(submission_pk, execution.INTERNAL_ERROR)
        return {"outcome": "failed"}


def _describe(submission_pk: int, *, refs: Refs) -> dict:
    image = execution.validated_image(submission_pk)  # no engine needed: a bad archive is reported as such
    if image is None:
        return {"outcome": "failed"}
    run = AlgorithmRun.objects.select_related("submission__phase__dataset_link__dataset").get(
        submission_id=submission_pk)
    submission, phase = run.submission, run.submission.phase
    if phase.dataset is None:
        execution.fail_if_running(submission_pk, "This phase has no test dataset to run the algorithm on.")
        return {"outcome": "failed"}
    config = ContainerConfig.for_phase(phase)
    plan = execution.planned_jobs(run, config)
    limits = config.limits(cases=phase.dataset.cases.count())
    return {"outcome": "claimed", "job": {
        "submission": submission_pk,
        "run": run.key.hex,
        "attempt": run.attempts,
        "hidden": phase.dataset.is_hidden,
        "image": {
            "id": image.image_id,
            "run_as": [image.uid, image.gid] if image.uid is not None and image.gid is not None else None,
            "archive": refs.file(submission.algorithm_archive.name, archive_sha256(submission)),
            "max_image_bytes": config.image_size_limit_mb << 20,
        },
        "limits": dataclasses.asdict(limits),
        "allowed_names": sorted(registry.phase_task(phase).output_files),
        "jobs": [{"job": job.pk, "case_id": job.case_id, "status": job.status, "input": refs.folder(input_dir),
                  "cases": batch_cases} for job, input_dir, batch_cases in plan],
    }}


def _lease_lost(submission_pk: int) -> LeaseLost:
    return LeaseLost(f"submission {submission_pk}: this worker does not hold the run (any more)")


def _held_run(submission_pk: int, worker: str, *, lock: bool = False) -> AlgorithmRun:
    runs = AlgorithmRun.objects.select_for_update() if lock else AlgorithmRun.objects
    run = runs.filter(submission_id=submission_pk).first()
    if run is None or run.worker != worker:
        raise _lease_lost(submission_pk)
    return run


def renew_lease(submission_pk: int, *, worker: str) -> str:
    """Renew the worker's lease; the reason to stop now ("" to go on)."""
    renewed = AlgorithmRun.objects.filter(submission_id=submission_pk, worker=worker).update(
        heartbeat_at=timezone.now())
    if not renewed:
        raise _lease_lost(submission_pk)
    status = Submission.objects.filter(pk=submission_pk).values_list("status", flat=True).first()
    return "" if status == Status.RUNNING else f"stopped because the submission is {status}"


def start_job(submission_pk: int, job_pk: int, *, worker: str) -> None:
    """One more attempt at a job: a job a dead worker left running goes back to queued first."""
    with transaction.atomic():
        run = _held_run(submission_pk, worker, lock=True)
        job = Job.objects.select_for_update().filter(pk=job_pk, run=run).first()
        if job is None:
            raise JobRefused(f"job {job_pk} is not a job of submission {submission_pk}")
        if job.status in (Status.RUNNING, Status.SCORING):  # left by a dead worker
            transition(job, Status.QUEUED)
        if job.status != Status.QUEUED:
            raise JobRefused(f"job {job_pk} is {job.status}; only a queued job starts")
        job.attempts += 1
        job.save(update_fields=["attempts"])
        transition(job, Status.RUNNING)


def record_job(submission_pk: int, job_pk: int, *, worker: str, report: JobReport, outputs: Path | None) -> str:
    """The outcome of one container run: "succeeded" (its files, a folder laid out as the run's predictions are for
    this job, are moved into the run's predictions), "stopped" or "failed" (the submission fails with the reason)."""
    with transaction.atomic():
        run = _held_run(submission_pk, worker, lock=True)
        job = Job.objects.select_for_update(of=("self",)).select_related(
            "run__submission__phase__dataset_link__dataset").filter(
            pk=job_pk, run=run).first()
        if job is None:
            raise JobRefused(f"job {job_pk} is not a job of submission {submission_pk}")
        if job.status in (Status.CANCELLED, Status.FAILED) and report.stopped:  # ended with its submission
            job.exit_code, job.duration_seconds = report.exit_code, report.duration_s
            job.save(update_fields=["exit_code", "duration_seconds"])
            return "stopped"
        if job.status != Status.RUNNING:
            raise JobRefused(f"job {job_pk} is {job.status}, not running")
        dataset = job.run.submission.phase.dataset
        result = runner.RunResult(report.succeeded, reason=report.reason, exit_code=report.exit_code)
        reason = result.shown_reason(hide_exit_code=bool(dataset and dataset.is_hidden))
        job.exit_code, job.duration_seconds = report.exit_code, report.duration_s
        job.log_tail = "\n".join(report.log_tail)[-LOG_TAIL_MAX:]
        job.save(update_fields=["exit_code", "duration_seconds", "log_tail"])
        if report.stopped:
            transition(job, Status.CANCELLED, error=reason)
            return "stopped"
        if not report.succeeded:
            transition(job, Status.FAILED, error=reason)
            where = f"case {job.case_id}" if job.case_id else "batch run"
            execution.fail_if_running(submission_pk, f"{where}: {reason}")
            return "failed"
        transition(job, Status.SCORING)
        predictions = execution.run_root(run) / "predictions"
        target = predictions / job.case_id if job.case_id else predictions
        if outputs is not None:
            for path in sorted(outputs.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    destination = target / path.relative_to(outputs)
                    destination.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(path, destination)
        transition(job, Status.SUCCEEDED, error="")
    return "succeeded"


_score_later: Callable[[int], object] | None = None


def register_scoring(start: Callable[[int], object]) -> None:
    """The algorithms app's scoring task (registered at ready time), for runs a remote worker finished."""
    global _score_later
    _score_later = start


def finish(submission_pk: int, *, worker: str, score_now: bool = True) -> str:
    """Every job succeeded: store the run's predictions and score them, here ("scored"/"failed", a local worker) or
    on the scoring queue ("scoring", a remote worker's request must not wait for an evaluation)."""
    run = _held_run(submission_pk, worker)
    unfinished = Job.objects.filter(run=run).exclude(status=Status.SUCCEEDED).count()
    if unfinished:
        raise JobRefused(f"{unfinished} job(s) of submission {submission_pk} have not succeeded")
    store_outputs(run, folder=execution.run_root(run) / "predictions")
    if score_now:
        return execution.score(submission_pk)
    if _score_later is None:
        raise RuntimeError("no scoring task registered (AlgorithmsConfig.ready registers it)")
    transaction.on_commit(lambda: _score_later(submission_pk))  # type: ignore[misc]
    return "scoring"


def fail(submission_pk: int, *, worker: str, reason: str) -> str:
    _held_run(submission_pk, worker)
    execution.fail_if_running(submission_pk, reason[:REASON_MAX])
    return "failed"


def engine_fault(submission_pk: int, *, worker: str) -> str:
    """The worker's engine went away: back to the queue ("requeued"), or failed after too many faults."""
    _held_run(submission_pk, worker)
    return execution.requeue_after_engine_fault(submission_pk)


def no_engine(submission_pk: int, *, worker: str) -> str:
    """No engine answers on the worker: failed at once, unless it went away during an earlier try (requeued)."""
    _held_run(submission_pk, worker)
    if requeue_count(kind=execution.ENGINE_FAULT_REQUEUES, object_id=submission_pk):
        return execution.requeue_after_engine_fault(submission_pk)
    execution.fail_if_running(submission_pk, execution.NO_ENGINE)
    return "failed"


def recover_leases() -> dict:
    """The database half of the periodic recovery: requeue runs of dead workers; what containers still belong to a
    live run (by submission) or to an evaluation being scored, for the worker to keep on its engine."""
    requeued = execution.requeue_stale_runs()
    live, scoring = execution.live_container_owners()
    return {"requeued": requeued, "live": sorted(live), "scoring": sorted(scoring)}
