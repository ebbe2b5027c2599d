"""The container worker's side of one algorithm submission, the one code path of local and remote workers: claim the
run through a job client, load the image into this host's engine from its (verified) archive, run one container per
case (or one batch container) in the sandbox of `runner`, report each job with its output files, and finish.

The client is the only way to the site (local_client.LocalJobClient calls the job service directly on the web host's
database and disk; remote_client.RemoteJobClient goes through the worker-token API with signed, expiring download
URLs and checksummed uploads), so this module never touches the database or the site's storage itself. Never stuck:
a refused archive, an engine that does not answer and any unexpected error end the submission `failed` with a
reason; an engine that goes away during a run sends it back to its queue (the job service counts the faults). A
worker that loses its lease (it was presumed dead and another worker took the run) stops and changes nothing.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Protocol

import docker
import requests
from django.conf import settings

from . import runner
from .archives import ArchiveError, untagged_stream
from .users import shown

logger = logging.getLogger(__name__)

ENGINE_ERROR = "The container engine failed while running this submission; the organizers have been told."
INTERNAL_ERROR = "The platform failed while running this submission (an internal error); the organizers have been told."
HEARTBEAT_SECONDS = 2.0
SUCCEEDED = "succeeded"


class LeaseLost(Exception):
    """The site says this worker no longer holds the run."""


class ServerUnavailable(Exception):
    """The site did not answer (a remote worker's transport failed); the task tries again later."""


class JobClient(Protocol):
    """What a worker asks of the site (see local_client.py and remote_client.py)."""

    worker: str

    def claim(self, submission_pk: int) -> dict: ...
    def renew(self, submission_pk: int) -> str: ...
    def archive(self, ref: dict) -> Path: ...
    def inputs(self, ref: dict, *, into: Path) -> Path: ...
    def start_job(self, submission_pk: int, job_pk: int) -> None: ...
    def record_job(self, submission_pk: int, job_pk: int, *, report: dict, outputs: Path | None) -> str: ...
    def finish(self, submission_pk: int) -> str: ...
    def fail(self, submission_pk: int, reason: str) -> str: ...
    def engine_fault(self, submission_pk: int) -> str: ...
    def no_engine(self, submission_pk: int) -> str: ...


def work_folder(job: dict) -> Path:
    """The run's folder on this host (MEDIA_ROOT: the site's media folder for a local worker, the worker's own
    scratch folder for a remote one), named by the run's UUID so that no two runs ever share it."""
    return Path(settings.MEDIA_ROOT) / "algorithm-runs" / f"{job['submission']}-{job['run']}"


def run_submission(client: JobClient, submission_pk: int, *, engine: docker.DockerClient | None = None) -> dict:
    """Run the whole pipeline; {"outcome": "scored" | "failed" | "busy" | "stopped" | "requeued" | ...} and, for
    "busy", "retry_after" seconds."""
    claimed = client.claim(submission_pk)
    if claimed["outcome"] != "claimed":
        return claimed
    job = claimed["job"]
    try:
        try:
            engine = engine or runner.docker_client()
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            logger.warning("no container engine answers for submission %s", submission_pk)
            return {"outcome": client.no_engine(submission_pk)}
        runner.remove_managed_containers(engine, labels={runner.LABEL_SUBMISSION: str(submission_pk)})
        refusal = load_image(client, job, engine=engine)
        if refusal:
            return {"outcome": client.fail(submission_pk, refusal)}
        outcome = run_jobs(client, job, engine=engine)
        if outcome != "done":
            return {"outcome": outcome}
        return {"outcome": client.finish(submission_pk)}
    except LeaseLost:
        logger.warning("submission %s: this worker lost the run's lease; another worker has it", submission_pk)
        return {"outcome": "lease lost"}
    except ServerUnavailable:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        if isinstance(error, docker.errors.APIError) and error.is_client_error():  # the engine refused a request
            logger.exception("container engine refused a request of submission %s", submission_pk)
            return {"outcome": client.fail(submission_pk, ENGINE_ERROR)}
        logger.warning("container engine lost during submission %s: %s", submission_pk, error)
        return {"outcome": client.engine_fault(submission_pk)}
    except runner.SandboxRefusal:
        logger.exception("sandbox refused on submission %s", submission_pk)
        return {"outcome": client.fail(submission_pk, ENGINE_ERROR)}
    except Exception:  # noqa: BLE001 - whatever went wrong, the submission must not stay running
        logger.exception("unexpected error on submission %s", submission_pk)
        return {"outcome": client.fail(submission_pk, INTERNAL_ERROR)}


def load_image(client: JobClient, job: dict, *, engine: docker.DockerClient) -> str:
    """Make sure the image is in the engine, loading its archive as a stream without any of its tags; "" or the
    reason the archive is refused."""
    image = job["image"]
    if image_in_engine(engine, image["id"]):
        return ""
    archive = image["archive"]
    try:
        stream = untagged_stream(client.archive(archive), max_image_bytes=image["max_image_bytes"],
                                 sha256=archive.get("sha256"))
        loaded = engine_load(engine, stream)
    except ArchiveError as error:
        return f"Archive refused: {error}"
    except (docker.errors.ImageLoadError, docker.errors.APIError) as error:
        message = getattr(error, "explanation", None) or str(error)
        return f"Archive refused: the engine could not load the image ({shown(message, 300)})"
    if image["id"] not in {loaded_image.id for loaded_image in loaded}:
        return "Archive refused: the archive's image could not be loaded as described by its manifest."
    return ""


def engine_load(engine: docker.DockerClient, stream) -> list:
    """Load a tar stream into the engine. The engine answers only once it has unpacked every layer, minutes after
    the last byte for a multi-GB archive: the client's usual timeout (seconds) would cut it off, so this one call
    waits up to SPINEBENCH_IMAGE_LOAD_TIMEOUT_S."""
    usual = engine.api.timeout
    engine.api.timeout = settings.SPINEBENCH_IMAGE_LOAD_TIMEOUT_S
    try:
        return engine.images.load(stream)
    finally:
        engine.api.timeout = usual


def image_in_engine(engine: docker.DockerClient, image_id: str) -> bool:
    try:
        engine.images.get(image_id)
        return True
    except docker.errors.ImageNotFound:
        return False


def run_jobs(client: JobClient, job: dict, *, engine: docker.DockerClient) -> str:
    """Run every job not yet succeeded; "done", "failed", "stopped" or "lease lost"."""
    submission_pk = job["submission"]
    limits = runner.Limits(**job["limits"])
    run_as = tuple(job["image"]["run_as"]) if job["image"]["run_as"] else None
    folder = work_folder(job)
    stop_check = StopCheck(client, submission_pk)
    for planned in job["jobs"]:
        if planned["status"] == SUCCEEDED:
            continue
        client.start_job(submission_pk, planned["job"])
        name = planned["case_id"] or "batch"
        staging = folder / "staging" / name
        shutil.rmtree(staging, ignore_errors=True)
        input_dir = client.inputs(planned["input"], into=folder / "inputs" / name)
        try:
            result = runner.run_algorithm(
                client=engine,
                image=job["image"]["id"],
                input_dir=input_dir,
                collect_to=staging,
                limits=limits,
                allowed_names=job["allowed_names"],
                case_ids=planned["cases"],
                should_stop=stop_check,
                labels={runner.LABEL_SUBMISSION: str(submission_pk), runner.LABEL_JOB: str(planned["job"])},
                name=f"spinebench-{submission_pk}-{planned['job']}-{job['attempt']}",
                run_as=run_as,  # type: ignore[arg-type]
            )
            if stop_check.lost:
                raise LeaseLost(stop_check.reason)
            report = {"succeeded": result.succeeded, "reason": result.reason, "exit_code": result.exit_code,
                      "duration_s": result.duration_s, "log_tail": result.log_tail,
                      "stopped": bool(stop_check.reason)}
            if stop_check.reason:
                report["succeeded"], report["reason"] = False, result.reason or stop_check.reason
            outcome = client.record_job(submission_pk, planned["job"], report=report,
                                        outputs=staging if result.succeeded and staging.is_dir() else None)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            if input_dir.is_relative_to(folder):  # a remote worker's downloaded copy
                shutil.rmtree(input_dir, ignore_errors=True)
        if outcome != SUCCEEDED:
            return outcome
    return "done"


class StopCheck:
    """Polled by the runner while a container runs: renews the worker's lease every HEARTBEAT_SECONDS and answers
    with a reason when the submission left `running` (cancelled by its creator, failed by the time-limit sweep) or
    this worker lost the run. A site that does not answer for a moment is not a reason to stop."""

    def __init__(self, client: JobClient, submission_pk: int):
        self.client, self.submission_pk = client, submission_pk
        self.reason, self.lost = "", False
        self._last = 0.0

    def __call__(self) -> str:
        if self.reason or time.monotonic() - self._last < HEARTBEAT_SECONDS:
            return self.reason
        self._last = time.monotonic()
        try:
            self.reason = self.client.renew(self.submission_pk)
        except LeaseLost as error:
            self.reason, self.lost = f"stopped: {error}", True
        except ServerUnavailable as error:
            logger.warning("submission %s: could not renew the lease (%s); going on", self.submission_pk, error)
        return self.reason


# evaluation images ------------------------------------------------------------------------------------------------


class EvaluationRunFailed(Exception):
    """An evaluation image's run produced no metrics.json (the message says why, for the organizers)."""

    def __init__(self, message: str, log_tail: list[str] | None = None):
        super().__init__(message)
        self.log_tail = log_tail or []


def run_evaluation_image(engine: docker.DockerClient, *, image_id: str, run_as: tuple[int, int], input_dir: Path,
                         mounts: dict[str, Path], limits: runner.Limits, output: Path,
                         labels: dict[str, str]) -> tuple[bytes, list[str]]:
    """Run an organizer's evaluation image once in the algorithm sandbox: /input holds the staged predictions, the
    ground truth and manifest are read-only mounts (the image can read them and never change them); the bytes of the
    /output/metrics.json it wrote, and its log tail. The same on the site's hosts and on a remote worker host."""
    from evaluators.contract import METRICS_JSON

    result = runner.run_algorithm(client=engine, image=image_id, input_dir=input_dir, collect_to=output,
                                  limits=limits, allowed_names=(METRICS_JSON,), labels=labels, run_as=run_as,
                                  read_only_mounts=mounts)
    if not result.succeeded:
        raise EvaluationRunFailed(result.reason.replace("the algorithm", "the evaluation image"), result.log_tail)
    return (output / METRICS_JSON).read_bytes(), result.log_tail


def run_remote_evaluation(client, submission_pk: int, *, engine: docker.DockerClient | None = None) -> dict:
    """Score a custom phase's submission on this host: claim it, run the evaluation image once per part on the
    staged predictions and ground truth the site names by signed URLs, and report each part's metrics.json (or why
    there is none); the site validates them and scores. {"outcome": ...}."""
    from evaluators.contract import GROUND_TRUTH_MOUNT, MANIFEST_MOUNT

    claimed = client.claim_evaluation(submission_pk)
    if claimed["outcome"] != "claimed":
        return claimed
    job = claimed["job"]
    folder = Path(settings.MEDIA_ROOT) / "evaluation-runs" / f"{submission_pk}-{job['ticket'][-12:]}"
    results: dict[str, dict] = {}
    try:
        engine = engine or runner.docker_client()
        refusal = load_image(client, job, engine=engine)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        refusal = f"the container engine failed: {shown(str(error), 300)}"
    try:
        for index, part in enumerate(job["parts"]):
            if refusal:
                results[part["key"]] = {"error": refusal}
                continue
            work = folder / str(index)
            try:
                mounts = {GROUND_TRUTH_MOUNT: client.inputs(part["ground_truth"], into=work / "ground_truth")}
                if part["manifest"]:
                    mounts[MANIFEST_MOUNT] = client.file(part["manifest"], into=work / "dataset.json")
                metrics, log_tail = run_evaluation_image(
                    engine, image_id=job["image"]["id"], run_as=tuple(job["image"]["run_as"]),  # type: ignore[arg-type]
                    input_dir=client.inputs(part["input"], into=work / "input"), mounts=mounts,
                    limits=runner.Limits(**job["limits"]), output=work / "output",
                    labels={runner.LABEL_EVALUATION: str(submission_pk)})
                results[part["key"]] = {"metrics": metrics.decode("utf-8", errors="replace"), "log_tail": log_tail}
            except EvaluationRunFailed as failure:
                results[part["key"]] = {"error": str(failure), "log_tail": failure.log_tail}
            except (docker.errors.DockerException, requests.exceptions.RequestException,
                    runner.SandboxRefusal) as error:
                results[part["key"]] = {"error": f"the container engine failed: {shown(str(error), 300)}"}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"outcome": client.record_evaluation(submission_pk, ticket=job["ticket"], results=results)}
