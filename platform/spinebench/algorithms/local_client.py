"""The job client of a container worker on the site's own host: it calls the job service (jobs.py) directly, on the
site's database and disk. The pipeline it serves (job_worker.py) is the same one a remote worker runs through the
worker-token API (remote_client.py)."""

from __future__ import annotations

from pathlib import Path

import docker

from . import execution, job_worker, jobs


class LocalJobClient:
    def __init__(self, worker: str | None = None):
        self.worker = worker or execution.worker_identity()

    def claim(self, submission_pk: int) -> dict:
        return jobs.claim(submission_pk, worker=self.worker)

    def renew(self, submission_pk: int) -> str:
        return jobs.renew_lease(submission_pk, worker=self.worker)

    def archive(self, ref: dict) -> Path:
        return Path(ref["path"])  # a verified copy in the local cache (jobs.LOCAL_REFS)

    def inputs(self, ref: dict, *, into: Path) -> Path:
        return Path(ref["path"])  # the dataset's own folder, mounted read-only

    def start_job(self, submission_pk: int, job_pk: int) -> None:
        jobs.start_job(submission_pk, job_pk, worker=self.worker)

    def record_job(self, submission_pk: int, job_pk: int, *, report: dict, outputs: Path | None) -> str:
        return jobs.record_job(submission_pk, job_pk, worker=self.worker, report=jobs.JobReport.from_payload(report),
                               outputs=outputs)

    def finish(self, submission_pk: int) -> str:
        return jobs.finish(submission_pk, worker=self.worker, score_now=True)

    def fail(self, submission_pk: int, reason: str) -> str:
        return jobs.fail(submission_pk, worker=self.worker, reason=reason)

    def engine_fault(self, submission_pk: int) -> str:
        return jobs.engine_fault(submission_pk, worker=self.worker)

    def no_engine(self, submission_pk: int) -> str:
        return jobs.no_engine(submission_pk, worker=self.worker)


def process_submission(submission_pk: int, *, client: docker.DockerClient | None = None) -> str:
    """Run the whole pipeline on this host (job_worker.run_submission through LocalJobClient); returns what happened
    ("scored", "failed", "busy", "nothing to do: ...", ...). "busy" means a live worker holds the run: the caller
    retries later. `client`: the container engine (default: DOCKER_HOST)."""
    return job_worker.run_submission(LocalJobClient(), submission_pk, engine=client)["outcome"]
