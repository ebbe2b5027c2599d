"""The job client of a remote container worker host (`spinebench worker --server URL --token TOKEN`): everything the
pipeline (job_worker.py) needs from the site comes through the worker-token API (worker_api.py), never from a
database or a shared disk. Downloads are streamed to this host's disk in blocks (an archive of any size never sits
in memory), checked against the size and SHA-256 the site gave, and kept in a cache by digest so a second run of the
same image downloads nothing; outputs go back as one zip per job with its SHA-256.

Transport failures (the site down, a 5xx) raise ServerUnavailable: the task tries again later, and meanwhile the run's
lease lapses so another worker may take it. A 409 `lease_lost` raises LeaseLost."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import requests
from django.conf import settings

from . import runner
from .archives import file_sha256
from .job_worker import LeaseLost, ServerUnavailable

logger = logging.getLogger(__name__)

BLOCK = 1 << 20
TIMEOUT = (10, 120)  # connect, read


class DownloadRefused(Exception):
    """A downloaded file is not what the site described (size, digest) or names a path outside its folder."""


class RemoteJobClient:
    def __init__(self, *, server: str, token: str, folder: Path, worker: str | None = None):
        self.server = server.rstrip("/")
        self.folder = Path(folder)
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    @classmethod
    def from_settings(cls) -> RemoteJobClient:
        token, folder = (getattr(settings, name) for name in ("SPINEBENCH_WORKER_TOKEN", "SPINEBENCH_WORKER_DIR"))
        return cls(server=settings.SPINEBENCH_JOB_SERVER, token=token, folder=Path(folder))

    # transport ------------------------------------------------------------------------------------------------------

    def _post(self, path: str, *, data: dict | None = None, files: dict | None = None) -> dict:
        url = f"{self.server}/api/worker/{path}"
        body = {"worker": self.worker, **(data or {})}
        try:
            if files:
                response = self.session.post(url, data=body, files=files, timeout=TIMEOUT)
            else:
                response = self.session.post(url, json=body, timeout=TIMEOUT)
        except requests.RequestException as error:
            raise ServerUnavailable(f"{url}: {error}") from None
        return self._answer(response)

    @staticmethod
    def _answer(response: requests.Response) -> dict:
        if response.status_code >= 500 or response.status_code == 429:
            raise ServerUnavailable(f"{response.url}: the site answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:300]}
        if response.status_code == 409 and body.get("code") == "lease_lost":
            raise LeaseLost(body.get("detail", "lease lost"))
        if response.status_code >= 400:
            raise RuntimeError(f"{response.url}: the site refused the call ({response.status_code}): {body}")
        return body

    def _download(self, url: str, target: Path, *, size: int | None, sha256: str | None) -> None:
        """Stream `url` into `target` (atomically: a partial download never has the final name)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, written = hashlib.sha256(), 0
        handle = tempfile.NamedTemporaryFile(dir=target.parent, prefix=".part-", delete=False)
        try:
            with handle:
                try:
                    with self.session.get(url, stream=True, timeout=TIMEOUT) as response:
                        if response.status_code != 200:
                            self._answer(response)
                            raise DownloadRefused(f"{url}: answered {response.status_code}")
                        for block in response.iter_content(BLOCK):
                            written += len(block)
                            if size is not None and written > size:
                                raise DownloadRefused(f"{target.name}: longer than the {size} bytes described")
                            digest.update(block)
                            handle.write(block)
                except requests.RequestException as error:
                    raise ServerUnavailable(f"{url}: {error}") from None
            if size is not None and written != size:
                raise DownloadRefused(f"{target.name}: {written} bytes arrived, {size} were described")
            if sha256 and digest.hexdigest() != sha256:
                raise DownloadRefused(f"{target.name}: the SHA-256 does not match the one the site recorded")
            os.replace(handle.name, target)
        finally:
            if os.path.exists(handle.name):
                os.unlink(handle.name)

    # the job client protocol (job_worker.JobClient) -------------------------------------------------------------

    def claim(self, submission_pk: int) -> dict:
        answer = self._post(f"runs/{submission_pk}/claim/")
        if answer.get("scope"):
            runner.configure_scope(answer["scope"])  # label containers as the site's own workers do
        return answer

    def renew(self, submission_pk: int) -> str:
        return self._post(f"runs/{submission_pk}/lease/").get("stop", "")

    def archive(self, ref: dict) -> Path:
        """The archive in this host's cache by its SHA-256, downloaded (and verified) only when missing."""
        sha256 = ref["sha256"]
        cached = self.folder / "cache" / f"{sha256}.tar"
        if not cached.is_file() or cached.stat().st_size != ref.get("size", cached.stat().st_size):
            self._download(ref["url"], cached, size=ref.get("size"), sha256=sha256)
        return cached

    def inputs(self, ref: dict, *, into: Path) -> Path:
        """A case's input folder, downloaded file by file into `into` (a fresh folder)."""
        shutil.rmtree(into, ignore_errors=True)
        into.mkdir(parents=True)
        for entry in ref["files"]:
            relative = PurePosixPath(entry["path"])
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise DownloadRefused(f"input path {entry['path']!r} leaves its folder")
            target = into.joinpath(*relative.parts)
            self._download(entry["url"], target, size=entry.get("size"), sha256=None)
            target.chmod(0o644)  # the container runs as the image's own non-root user: it must read its inputs
        for folder in (into, *(path for path in into.rglob("*") if path.is_dir())):
            folder.chmod(0o755)
        return into

    def file(self, ref: dict, *, into: Path) -> Path:
        """One file (a manifest) downloaded to `into`."""
        self._download(ref["url"], into, size=ref.get("size"), sha256=ref.get("sha256"))
        into.chmod(0o644)
        return into

    def claim_evaluation(self, submission_pk: int) -> dict:
        return self._post(f"evaluations/{submission_pk}/claim/")

    def record_evaluation(self, submission_pk: int, *, ticket: str, results: dict) -> str:
        return self._post(f"evaluations/{submission_pk}/result/", data={"ticket": ticket, "results": results})[
            "outcome"]

    def start_job(self, submission_pk: int, job_pk: int) -> None:
        self._post(f"runs/{submission_pk}/jobs/{job_pk}/start/")

    def record_job(self, submission_pk: int, job_pk: int, *, report: dict, outputs: Path | None) -> str:
        if outputs is None:
            return self._post(f"runs/{submission_pk}/jobs/{job_pk}/report/",
                              data={"report": json.dumps(report)})["outcome"]
        with tempfile.TemporaryDirectory(prefix="spinebench-outputs-", dir=self.folder) as scratch:
            archive = Path(scratch) / "outputs.zip"
            with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
                for path in sorted(outputs.rglob("*")):
                    if path.is_file() and not path.is_symlink():
                        bundle.write(path, path.relative_to(outputs).as_posix())
            with archive.open("rb") as handle:
                return self._post(f"runs/{submission_pk}/jobs/{job_pk}/report/",
                                  data={"report": json.dumps(report), "outputs_sha256": file_sha256(archive)},
                                  files={"outputs": ("outputs.zip", handle, "application/zip")})["outcome"]

    def finish(self, submission_pk: int) -> str:
        return self._post(f"runs/{submission_pk}/finish/")["outcome"]

    def fail(self, submission_pk: int, reason: str) -> str:
        return self._post(f"runs/{submission_pk}/fail/", data={"reason": reason})["outcome"]

    def engine_fault(self, submission_pk: int) -> str:
        return self._post(f"runs/{submission_pk}/engine-fault/")["outcome"]

    def no_engine(self, submission_pk: int) -> str:
        return self._post(f"runs/{submission_pk}/no-engine/")["outcome"]

    # the worker process -----------------------------------------------------------------------------------------

    def heartbeat(self, *, hostname: str, queues: list[str], pid: int, version: str, started: str,
                  stopped: bool = False) -> dict:
        return self._post("heartbeat/", data={"hostname": hostname, "queues": queues, "pid": pid, "version": version,
                                              "started": started, "stopped": stopped})

    def recover(self) -> dict:
        return self._post("recover/")


def recover_remote() -> dict[str, int]:
    """The recovery on a remote worker: the site requeues runs of dead workers and says which runs are live; this
    host removes its engine's containers of the site that belong to none of them."""
    client = RemoteJobClient.from_settings()
    answer = client.recover()
    if answer.get("scope"):
        runner.configure_scope(answer["scope"])
    live, scoring = set(answer.get("live") or []), set(answer.get("scoring") or [])
    try:
        engine = runner.docker_client()
    except Exception:  # noqa: BLE001 - no engine here: nothing to clean on it
        return {"requeued": int(answer.get("requeued") or 0), "containers_removed": 0}
    removed = runner.remove_managed_containers(
        engine, keep=lambda labels: (labels.get(runner.LABEL_SUBMISSION) in live
                                     or labels.get(runner.LABEL_EVALUATION) in scoring))
    return {"requeued": int(answer.get("requeued") or 0), "containers_removed": removed}
