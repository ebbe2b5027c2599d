"""The worker-token API a remote container worker uses instead of a database and a shared disk (docs/workers.md):
a whole run through its endpoints (claim with signed URLs, downloads checked against the dataset and the recorded
SHA-256, job reports with checksummed outputs, finish and scoring), and its refusals: a participant's token, another
worker token's URL, an expired URL, a worker that lost the lease, outputs damaged on the way or not what the task
accepts. No container runs here: the reports stand for the runs (the real engine runs in
tests/faults/test_remote_worker.py)."""

from __future__ import annotations

import hashlib
import io
import json
import time
import zipfile
from pathlib import Path
from urllib.parse import urlparse

import pytest
from django.core.files import File
from rest_framework.test import APIClient

from spinebench.accounts.models import ApiToken
from spinebench.accounts.tokens import issue_token
from spinebench.algorithms.models import AlgorithmRun, Job
from spinebench.submissions.models import Evaluation, Submission
from spinebench.submissions.services import create_submission
from spinebench.workers.services import record_heartbeat

from .archive_builders import write_archive

ANGLES = {"spine_a": [4.0, 20.0, 9.0], "spine_b": [5.0, 33.0, 10.0], "spine_c": [6.0, 11.0, 11.0]}


def api(secret: str | None = None) -> APIClient:
    client = APIClient()
    if secret:
        client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    return client


def path_of(url: str) -> str:
    return urlparse(url).path


def outputs_zip(files: dict[str, bytes]) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    data = buffer.getvalue()
    return data, hashlib.sha256(data).hexdigest()


def report(client: APIClient, submission: int, job: int, *, worker: str, files: dict[str, bytes] | None,
           sha256: str | None = None, succeeded: bool = True):
    body = {"worker": worker, "report": json.dumps({
        "succeeded": succeeded, "reason": "" if succeeded else "the algorithm exited with code 3", "exit_code":
        0 if succeeded else 3, "duration_s": 1.5, "log_tail": ["done"]})}
    if files is not None:
        data, digest = outputs_zip(files)
        body["outputs"] = io.BytesIO(data)
        body["outputs"].name = "outputs.zip"
        body["outputs_sha256"] = sha256 or digest
    return client.post(f"/api/worker/runs/{submission}/jobs/{job}/report/", body, format="multipart")


@pytest.fixture
def queued(algorithm_phase, algorithm_participant, tmp_path) -> Submission:
    record_heartbeat(hostname="gpu-host/remote@host", queues=["containers-cpu"])
    write_archive(tmp_path / "image.tar")
    with open(tmp_path / "image.tar", "rb") as handle:  # queued; its message is never delivered here
        submission = create_submission(phase=algorithm_phase, user=algorithm_participant,
                                       upload=File(handle, name="image.tar"))
    submission.archive_path = tmp_path / "image.tar"
    return submission


@pytest.fixture
def worker_token() -> str:
    return issue_token(name="gpu-host", kind=ApiToken.Kind.WORKER).secret


def test_a_run_through_the_worker_api_is_scored_once(queued, worker_token, algorithm_phase, eager_tasks,
                                                     django_capture_on_commit_callbacks):
    client = api(worker_token)
    answer = client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "host-1:7"}, format="json").json()
    assert answer["outcome"] == "claimed", answer
    job = answer["job"]
    # Files are named by signed URLs, never by a path of the site's disk.
    assert "path" not in job["image"]["archive"] and all("path" not in planned["input"] for planned in job["jobs"])
    archive = client.get(path_of(job["image"]["archive"]["url"]))
    assert archive.status_code == 200
    body = b"".join(archive.streaming_content)
    assert hashlib.sha256(body).hexdigest() == job["image"]["archive"]["sha256"]
    assert body == queued.archive_path.read_bytes()
    dataset = algorithm_phase.dataset
    for planned in job["jobs"]:
        (entry,) = planned["input"]["files"]  # the case folder holds one image
        served = b"".join(client.get(path_of(entry["url"])).streaming_content)
        assert served == (Path(dataset.root) / "inputs" / planned["case_id"] / entry["path"]).read_bytes()
        assert client.post(f"/api/worker/runs/{queued.pk}/jobs/{planned['job']}/start/", {"worker": "host-1:7"},
                           format="json").status_code == 200
        lease = client.post(f"/api/worker/runs/{queued.pk}/lease/", {"worker": "host-1:7"}, format="json")
        assert lease.json() == {"stop": ""}
        answered = report(client, queued.pk, planned["job"], worker="host-1:7",
                          files={"angles.json": json.dumps({"angles": ANGLES[planned["case_id"]]}).encode()})
        assert answered.json() == {"outcome": "succeeded"}, answered.content
    with django_capture_on_commit_callbacks(execute=True):
        finished = client.post(f"/api/worker/runs/{queued.pk}/finish/", {"worker": "host-1:7"}, format="json")
    assert finished.json() == {"outcome": "scoring"}
    queued.refresh_from_db()
    assert queued.status == "succeeded", queued.error_message
    assert Evaluation.objects.filter(submission=queued).count() == 1
    assert sorted(Job.objects.filter(run__submission=queued).values_list("attempts", flat=True)) == [1, 1, 1]
    assert AlgorithmRun.objects.get(submission=queued).worker.startswith("remote:")


def test_only_the_worker_token_that_claimed_gets_the_files(queued, worker_token, algorithm_participant):
    answer = api(worker_token).post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "w"}, format="json").json()
    url = path_of(answer["job"]["image"]["archive"]["url"])
    user_token = issue_token(name="laptop", user=algorithm_participant).secret
    assert api(user_token).get(url).status_code == 403  # a participant's token never reaches a worker endpoint
    assert api(user_token).post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "w"},
                                format="json").status_code == 403
    assert api().get(url).status_code == 401
    other = issue_token(name="other-host", kind=ApiToken.Kind.WORKER).secret
    refused = api(other).get(url)
    assert refused.status_code == 403 and "another worker token" in refused.json()["detail"]
    assert api(worker_token).get(url[:-8] + "AAAAAAA/").status_code == 403  # tampered


def test_an_expired_url_is_refused(queued, worker_token, settings):
    settings.SPINEBENCH_WORKER_URL_TTL_S = 1
    answer = api(worker_token).post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "w"}, format="json").json()
    url = path_of(answer["job"]["jobs"][0]["input"]["files"][0]["url"])
    time.sleep(2.1)
    refused = api(worker_token).get(url)
    assert refused.status_code == 403 and "expired" in refused.json()["detail"]


def test_a_worker_that_lost_its_lease_changes_nothing(queued, worker_token, settings):
    client = api(worker_token)
    job = client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "first"}, format="json").json()["job"]
    first_job = job["jobs"][0]["job"]
    assert client.post(f"/api/worker/runs/{queued.pk}/jobs/{first_job}/start/", {"worker": "first"},
                       format="json").status_code == 200
    # While the first worker's lease is fresh, another is told to come back later.
    busy = client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "second"}, format="json").json()
    assert busy["outcome"] == "busy" and busy["retry_after"] > 0
    AlgorithmRun.objects.filter(submission=queued).update(heartbeat_at=None)  # the first worker's lease lapsed
    assert client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "second"},
                       format="json").json()["outcome"] == "claimed"
    late = report(client, queued.pk, first_job, worker="first", files={"angles.json": b'{"angles": [1, 2, 3]}'})
    assert late.status_code == 409 and late.json()["code"] == "lease_lost"
    assert client.post(f"/api/worker/runs/{queued.pk}/finish/", {"worker": "first"}, format="json").status_code == 409
    assert client.post(f"/api/worker/runs/{queued.pk}/fail/", {"worker": "first", "reason": "x"},
                       format="json").status_code == 409
    assert Job.objects.get(pk=first_job).status == "running"  # left for the new holder to run again
    queued.refresh_from_db()
    assert queued.status == "running"


@pytest.mark.parametrize("files, sha256, expected", [
    ({"angles.json": b'{"angles": [1, 2, 3]}'}, "0" * 64, "do not match their SHA-256"),
    ({"secrets.txt": b"x"}, None, "not an output this task accepts"),
    ({"../../escape/angles.json": b"x"}, None, "outside"),
], ids=["damaged on the way", "a file the task does not accept", "a path out of the folder"])
def test_refused_outputs_leave_the_job_running(queued, worker_token, files, sha256, expected):
    client = api(worker_token)
    job = client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "w"}, format="json").json()["job"]
    planned = job["jobs"][0]["job"]
    client.post(f"/api/worker/runs/{queued.pk}/jobs/{planned}/start/", {"worker": "w"}, format="json")
    refused = report(client, queued.pk, planned, worker="w", files=files, sha256=sha256)
    assert refused.status_code == 400 and expected in json.dumps(refused.json()), refused.content
    assert Job.objects.get(pk=planned).status == "running"


def test_a_failed_job_fails_the_submission_and_hides_the_exit_code(queued, worker_token):
    client = api(worker_token)
    job = client.post(f"/api/worker/runs/{queued.pk}/claim/", {"worker": "w"}, format="json").json()["job"]
    planned = job["jobs"][0]
    client.post(f"/api/worker/runs/{queued.pk}/jobs/{planned['job']}/start/", {"worker": "w"}, format="json")
    assert report(client, queued.pk, planned["job"], worker="w", files=None, succeeded=False).json() == {
        "outcome": "failed"}
    queued.refresh_from_db()
    assert queued.status == "failed" and planned["case_id"] in queued.error_message
    assert "3" not in queued.error_message.replace(planned["case_id"], "")  # hidden test data: no exit code


def test_an_evaluation_report_needs_the_ticket_of_its_own_claim(queued, worker_token):
    from django.core import signing

    from spinebench.algorithms import evaluation_jobs
    from spinebench.algorithms.jobs import JobRefused

    token_pk = ApiToken.objects.get(name="gpu-host").pk
    good = {"s": queued.pk, "k": "0" * 32, "t": token_pk}
    for ticket, why in [
        ("forged", "not valid"),
        (signing.dumps({**good, "t": token_pk + 1}, salt=evaluation_jobs.SALT), "another submission or worker"),
        (signing.dumps({**good, "s": queued.pk + 1}, salt=evaluation_jobs.SALT), "another submission or worker"),
        (signing.dumps(good, salt="another purpose"), "not valid"),
    ]:
        with pytest.raises(JobRefused, match=why):
            evaluation_jobs.record_results(queued.pk, token_pk=token_pk, ticket=ticket, results={})
    queued.refresh_from_db()
    assert queued.status == "queued"
