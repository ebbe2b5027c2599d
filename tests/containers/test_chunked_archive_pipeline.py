"""An algorithm archive sent through the chunked upload API (with a chunk lost on the way and resumed from the
server's offset) runs like any upload; an archive whose stored bytes changed after upload is refused by digest
before anything is loaded."""

import hashlib

import pytest
from rest_framework.test import APIClient

from spinebench.algorithms import local_client
from spinebench.submissions.models import Submission

from .archive_builders import write_archive
from .conftest import EXAMPLE_IMAGE

pytestmark = pytest.mark.django_db
CHUNK = 8 << 20


@pytest.fixture(autouse=True)
def container_worker_alive(db):
    from spinebench.workers.services import record_heartbeat

    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])


def chunked_upload(api, path, *, drop_chunk: int | None = None) -> str:
    data = path.read_bytes()
    created = api.post("/api/uploads/", {"kind": "algorithm_archive", "size": len(data),
                                         "sha256": hashlib.sha256(data).hexdigest(), "filename": path.name},
                       format="json")
    assert created.status_code == 201, created.content
    session_id, index = created.json()["id"], 0
    offset = created.json()["offset"]
    while offset < len(data):
        chunk = data[offset:offset + CHUNK]
        sent = chunk[: len(chunk) // 2] if index == drop_chunk else chunk  # the connection drops mid-chunk
        response = api.put(f"/api/uploads/{session_id}/?offset={offset}", data=sent,
                           content_type="application/octet-stream",
                           HTTP_UPLOAD_CHUNK_SHA256=hashlib.sha256(chunk).hexdigest())
        index += 1
        if sent is not chunk:
            assert response.status_code == 400
            offset = int(api.head(f"/api/uploads/{session_id}/")["Upload-Offset"])  # resume where the server is
            continue
        assert response.status_code == 200, response.content
        offset = response.json()["offset"]
    finalised = api.post(f"/api/uploads/{session_id}/finalise/")
    assert finalised.status_code == 200, finalised.content
    return session_id


@pytest.mark.docker
def test_a_chunked_archive_with_a_dropped_chunk_runs_and_is_ranked(
    algorithm_phase, algorithm_participant, saved_images, eager_tasks, django_capture_on_commit_callbacks
):
    api = APIClient()
    api.force_authenticate(algorithm_participant)
    session_id = chunked_upload(api, saved_images(EXAMPLE_IMAGE), drop_chunk=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/api/phases/{algorithm_phase.pk}/submissions/", {"upload": session_id}, format="json")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == "succeeded", submission.error_message
    assert submission.evaluation.rank == 1


def test_an_archive_changed_on_disk_after_upload_is_refused_by_digest(
    algorithm_phase, algorithm_participant, tmp_path, django_capture_on_commit_callbacks
):
    write_archive(tmp_path / "image.tar")
    api = APIClient()
    api.force_authenticate(algorithm_participant)
    session_id = chunked_upload(api, tmp_path / "image.tar")
    response = api.post(f"/api/phases/{algorithm_phase.pk}/submissions/", {"upload": session_id}, format="json")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    stored = submission.algorithm_archive.path
    content = bytearray(open(stored, "rb").read())
    content[-100] ^= 0x01  # a byte in the trailing zero blocks: a valid archive still, but not the uploaded one
    with open(stored, "wb") as handle:
        handle.write(bytes(content))
    assert local_client.process_submission(submission.pk) == "failed"
    submission.refresh_from_db()
    assert "does not match the SHA-256 recorded when it was uploaded" in submission.error_message
