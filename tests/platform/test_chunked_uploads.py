"""Resumable chunked uploads (spinebench.uploads.chunked and its API): create -> chunks by offset -> resume ->
finalise with sha256; refusals (gaps, overlaps, oversize, corrupted chunks, a wrong whole digest), dedupe per
account, quota and size caps at create, owner-only access, the expiry sweep, and the consumers (algorithm and
prediction-zip submissions) taking the finished file through their usual validation. Digests are computed here
with hashlib over the bytes the test sent, independently of the server's code."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from spinebench.accounts.models import ApiToken
from spinebench.accounts.tokens import issue_token
from spinebench.challenges.models import Phase
from spinebench.submissions.models import Submission
from spinebench.uploads import chunked
from spinebench.uploads.models import StoredUpload, UploadSession
from spinebench.uploads.tasks import sweep_upload_sessions
from tests.platform.factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

KIB = 1024


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def payload(size: int, seed: int = 0) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (size // 32 + 1))[:size]


def create(client, data: bytes, *, kind="algorithm_archive", filename="algo.tar", declared_sha=None):
    return client.post("/api/uploads/", {"kind": kind, "size": len(data), "sha256": declared_sha or sha(data),
                                         "filename": filename}, format="json")


def put(client, session_id, chunk: bytes, *, offset: int | None, checksum: str | None = None,
        content_range: str | None = None):
    headers = {"HTTP_UPLOAD_CHUNK_SHA256": checksum if checksum is not None else sha(chunk)}
    if content_range:
        headers["HTTP_CONTENT_RANGE"] = content_range
    url = f"/api/uploads/{session_id}/" + ("" if offset is None else f"?offset={offset}")
    return client.put(url, data=chunk, content_type="application/octet-stream", **headers)


def upload_all(client, data: bytes, *, chunk: int = 4 * KIB, kind="algorithm_archive", filename="algo.tar"):
    created = create(client, data, kind=kind, filename=filename)
    assert created.status_code == 201, created.content
    session_id = created.json()["id"]
    for start in range(created.json()["offset"], len(data), chunk):
        response = put(client, session_id, data[start:start + chunk], offset=start)
        assert response.status_code == 200, response.content
    finalised = client.post(f"/api/uploads/{session_id}/finalise/")
    assert finalised.status_code == 200, finalised.content
    return finalised.json()


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture
def client(user):
    return logged_in(user)


def stored_bytes(record: StoredUpload) -> bytes:
    with default_storage.open(record.storage_name) as handle:
        return handle.read()


def test_a_file_uploaded_in_chunks_is_stored_once_with_its_digest(client, user):
    data = payload(10 * KIB + 7)
    session = upload_all(client, data)
    assert session["status"] == "complete" and session["offset"] == len(data) and not session["deduplicated"]
    record = StoredUpload.objects.get(pk=session["stored_upload"])
    assert record.sha256 == sha(data) and record.size == len(data) and record.owner == user
    assert record.kind == "algorithm_archive" and record.account.key == f"user:{user.pk}"
    assert record.original_name == "algo.tar" and record.storage_name.endswith(".tar")
    assert stored_bytes(record) == data
    assert not chunked.partial_path(UploadSession.objects.get()).exists()  # moved into storage, not copied


def test_resume_reads_the_offset_after_a_dropped_chunk(client):
    data = payload(9 * KIB)
    session_id = create(client, data).json()["id"]
    assert put(client, session_id, data[:4 * KIB], offset=0).status_code == 200
    # The connection drops inside the second chunk: the server got only part of it (Content-Length says more).
    truncated = put(client, session_id, data[4 * KIB:6 * KIB], offset=4 * KIB, checksum=sha(data[4 * KIB:8 * KIB]))
    assert truncated.status_code == 400 and truncated.json()["code"] == "chunk_checksum"
    state = client.get(f"/api/uploads/{session_id}/")
    assert state.status_code == 200 and state.json()["offset"] == 4 * KIB and state["Upload-Offset"] == str(4 * KIB)
    head = client.head(f"/api/uploads/{session_id}/")
    assert head.status_code == 200 and head["Upload-Offset"] == str(4 * KIB)
    resumed = put(client, session_id, data[4 * KIB:], offset=int(head["Upload-Offset"]))
    assert resumed.status_code == 200 and resumed.json()["offset"] == len(data)
    finalised = client.post(f"/api/uploads/{session_id}/finalise/")
    assert finalised.status_code == 200
    assert stored_bytes(StoredUpload.objects.get()) == data


def test_content_range_places_a_chunk_like_the_offset_parameter(client):
    data = payload(3000)
    session_id = create(client, data).json()["id"]
    first = put(client, session_id, data[:1000], offset=None, content_range=f"bytes 0-999/{len(data)}")
    assert first.status_code == 200 and first.json()["offset"] == 1000
    rest = put(client, session_id, data[1000:], offset=None, content_range="bytes 1000-2999/*")
    assert rest.status_code == 200 and rest.json()["offset"] == 3000
    wrong_total = create(client, data, filename="b.tar").json()["id"]
    refused = put(client, wrong_total, data[:10], offset=None, content_range="bytes 0-9/5")
    assert refused.status_code == 400 and "Content-Range" in refused.json()
    disagree = put(client, wrong_total, data[:10], offset=3, content_range="bytes 0-9/*")
    assert disagree.status_code == 400 and "offset" in disagree.json()


def test_out_of_order_overlapping_and_oversize_chunks_are_refused(client, settings):
    settings.SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES = 4 * KIB
    data = payload(10 * KIB)
    session_id = create(client, data).json()["id"]
    assert put(client, session_id, data[:2 * KIB], offset=0).status_code == 200
    gap = put(client, session_id, data[3 * KIB:4 * KIB], offset=3 * KIB)
    assert gap.status_code == 409 and gap.json()["code"] == "offset_mismatch" and gap.json()["upload_offset"] == 2 * KIB
    overlap = put(client, session_id, data[KIB:3 * KIB], offset=KIB)
    assert overlap.status_code == 409 and overlap["Upload-Offset"] == str(2 * KIB)
    retried = put(client, session_id, data[:2 * KIB], offset=0)  # a chunk sent twice is not appended twice
    assert retried.status_code == 409
    too_big = put(client, session_id, data[2 * KIB:7 * KIB], offset=2 * KIB)
    assert too_big.status_code == 413 and too_big.json()["code"] == "chunk_too_large"
    assert put(client, session_id, data[2 * KIB:6 * KIB], offset=2 * KIB).status_code == 200
    assert put(client, session_id, data[6 * KIB:10 * KIB], offset=6 * KIB).status_code == 200
    past_end = put(client, session_id, b"x", offset=10 * KIB)
    assert past_end.status_code == 413 and past_end.json()["code"] == "past_declared_size"
    no_offset = put(client, session_id, b"x", offset=None)
    assert no_offset.status_code == 400 and "offset" in no_offset.json()
    assert client.post(f"/api/uploads/{session_id}/finalise/").status_code == 200
    assert stored_bytes(StoredUpload.objects.get()) == data
    assert put(client, session_id, b"x", offset=10 * KIB).json()["code"] == "complete"


def test_a_corrupted_chunk_is_refused_and_not_kept(client):
    data = payload(8 * KIB)
    session_id = create(client, data).json()["id"]
    assert put(client, session_id, data[:4 * KIB], offset=0).status_code == 200
    corrupted = bytearray(data[4 * KIB:])
    corrupted[100] ^= 0xFF  # one bit flipped on the way; the header carries the sender's digest of the real bytes
    refused = put(client, session_id, bytes(corrupted), offset=4 * KIB, checksum=sha(data[4 * KIB:]))
    assert refused.status_code == 400
    assert refused.json()["code"] == "chunk_checksum" and "Upload-Chunk-SHA256" in refused.json()
    session = UploadSession.objects.get(pk=session_id)
    assert session.offset == 4 * KIB and chunked.partial_path(session).stat().st_size == 4 * KIB
    missing = put(client, session_id, data[4 * KIB:], offset=4 * KIB, checksum="")
    assert missing.status_code == 400 and missing.json()["code"] == "chunk_checksum_required"
    assert put(client, session_id, data[4 * KIB:], offset=4 * KIB).status_code == 200
    assert client.post(f"/api/uploads/{session_id}/finalise/").status_code == 200


def test_finalise_refuses_bytes_that_do_not_match_the_declared_sha256(client):
    data, other = payload(5000), payload(5000, seed=1)
    session_id = create(client, data, declared_sha=sha(other)).json()["id"]
    early = client.post(f"/api/uploads/{session_id}/finalise/")
    assert early.status_code == 409 and early.json()["code"] == "incomplete" and early.json()["upload_offset"] == 0
    assert put(client, session_id, data, offset=0).status_code == 200
    refused = client.post(f"/api/uploads/{session_id}/finalise/")
    assert refused.status_code == 400 and refused.json()["code"] == "sha256_mismatch" and "sha256" in refused.json()
    session = UploadSession.objects.get(pk=session_id)
    assert session.status == "failed" and not chunked.partial_path(session).exists()
    assert not StoredUpload.objects.exists()
    assert put(client, session_id, b"x", offset=5000).status_code == 409


def test_the_same_archive_twice_is_stored_once_per_account(client, user):
    data = payload(6 * KIB)
    first = upload_all(client, data)
    again = create(client, data, filename="renamed.tar")
    assert again.status_code == 201
    assert again.json()["status"] == "complete" and again.json()["deduplicated"] and again.json()["offset"] == len(data)
    assert again.json()["stored_upload"] == first["stored_upload"]
    # Two sessions of the same bytes in flight at once: the second to finalise gets the first one's file.
    parallel = [create(client, payload(3 * KIB, seed=2)).json()["id"] for _ in range(2)]
    for session_id in parallel:
        assert put(client, session_id, payload(3 * KIB, seed=2), offset=0).status_code == 200
    results = [client.post(f"/api/uploads/{session_id}/finalise/").json() for session_id in parallel]
    assert results[0]["stored_upload"] == results[1]["stored_upload"] and results[1]["deduplicated"]
    assert StoredUpload.objects.count() == 2
    assert all(not chunked.partial_path(UploadSession.objects.get(pk=pk)).exists() for pk in parallel)
    # Another account uploading the same bytes gets its own copy (dedupe never crosses accounts).
    stranger = upload_all(logged_in(UserFactory()), data)
    assert stranger["stored_upload"] != first["stored_upload"] and not stranger["deduplicated"]


def test_size_caps_and_the_quota_are_checked_at_create(client, user, settings):
    settings.SPINEBENCH_MAX_PREDICTIONS_ZIP_BYTES = 10 * KIB
    over_cap = create(client, payload(10 * KIB + 1), kind="predictions_zip", filename="p.zip")
    assert over_cap.status_code == 413 and over_cap.json()["code"] == "too_large"
    assert "10.0 KiB" in over_cap.json()["detail"]
    settings.SPINEBENCH_USER_STORAGE_QUOTA_BYTES = 20 * KIB
    assert create(client, payload(12 * KIB)).status_code == 201
    # The open session's 12 KiB are promised: a second one of 12 KiB would pass the 20 KiB quota together.
    over_quota = create(client, payload(12 * KIB, seed=3))
    assert over_quota.status_code == 413 and over_quota.json()["code"] == "quota"
    assert not UploadSession.objects.filter(size=12 * KIB, sha256=sha(payload(12 * KIB, seed=3))).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "predictions_csv", "size": 10, "sha256": "a" * 64}, "kind"),
        ({"kind": "dataset", "size": 0, "sha256": "a" * 64}, "size"),
        ({"kind": "dataset", "size": 10, "sha256": "xyz"}, "sha256"),
        ({"kind": "dataset", "size": "ten", "sha256": "a" * 64}, "size"),
    ],
)
def test_bad_create_requests_get_field_keyed_errors(client, body, field):
    response = client.post("/api/uploads/", body, format="json")
    assert response.status_code == 400 and field in response.json()
    assert not UploadSession.objects.exists()


def test_only_the_owner_reaches_a_session(client):
    data = payload(2000)
    session_id = create(client, data).json()["id"]
    for other in (logged_in(UserFactory()), logged_in(UserFactory(is_staff=True, is_superuser=True))):
        assert other.get(f"/api/uploads/{session_id}/").status_code == 404
        assert put(other, session_id, data, offset=0).status_code == 404
        assert other.post(f"/api/uploads/{session_id}/finalise/").status_code == 404
        assert other.delete(f"/api/uploads/{session_id}/").status_code == 404
    assert APIClient().get(f"/api/uploads/{session_id}/").status_code == 401
    worker = APIClient(headers={"Authorization": "Token " + issue_token(name="w", kind=ApiToken.Kind.WORKER).secret})
    assert worker.get(f"/api/uploads/{session_id}/").status_code == 403
    assert worker.post("/api/uploads/", {"kind": "dataset", "size": 1, "sha256": "a" * 64}).status_code == 403
    assert client.get("/api/uploads/not-a-uuid/").status_code == 404
    assert UploadSession.objects.get().offset == 0


def test_abort_deletes_an_unfinished_sessions_bytes(client):
    data = payload(3000)
    session_id = create(client, data).json()["id"]
    put(client, session_id, data[:1000], offset=0)
    path = chunked.partial_path(UploadSession.objects.get())
    assert client.delete(f"/api/uploads/{session_id}/").status_code == 204
    assert not path.exists() and not UploadSession.objects.exists()


def test_the_sweep_removes_expired_sessions_and_unclaimed_files(client, user):
    unfinished = create(client, payload(3000)).json()["id"]
    put(client, unfinished, payload(3000)[:1000], offset=0)
    unclaimed = upload_all(client, payload(2000, seed=5))
    claimed = upload_all(client, payload(2000, seed=6))
    chunked.claim(session_id=claimed["id"], owner=user, kinds={"algorithm_archive"})
    live = create(client, payload(1000, seed=7)).json()["id"]
    partial = chunked.partial_path(UploadSession.objects.get(pk=unfinished))
    assert sweep_upload_sessions() == {"unfinished": 0, "finished": 0, "files": 0}  # nothing expired yet
    UploadSession.objects.exclude(pk=live).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert sweep_upload_sessions() == {"unfinished": 1, "finished": 2, "files": 1}
    assert not partial.exists()
    assert list(UploadSession.objects.values_list("pk", flat=True)) == [UploadSession.objects.get(pk=live).pk]
    assert not StoredUpload.objects.filter(pk=unclaimed["stored_upload"]).exists()
    kept = StoredUpload.objects.get(pk=claimed["stored_upload"])
    assert stored_bytes(kept) == payload(2000, seed=6)


# consumers ----------------------------------------------------------------------------------------------------------


def algorithm_phase():
    from spinebench.workers.services import record_heartbeat

    phase = PhaseFactory(submission_kind=Phase.SubmissionKind.ALGORITHM, max_upload_bytes=64 * KIB)
    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])  # a live container worker serves it
    return phase


def test_an_algorithm_submission_takes_a_finished_upload(db):
    phase = algorithm_phase()
    participant = RegistrationFactory(challenge=phase.challenge).user
    client = logged_in(participant)
    data = payload(20 * KIB)
    session = upload_all(client, data)
    response = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": session["id"]}, format="json")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    record = StoredUpload.objects.get()
    assert submission.status == "queued" and submission.algorithm_archive.name == record.storage_name
    assert submission.upload_size == len(data)
    assert UploadSession.objects.get().consumed_at is not None
    # The same archive submitted again (a second session, deduplicated) backs a second submission: still one file.
    again = create(client, data).json()
    assert again["deduplicated"]
    second = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": again["id"]}, format="json")
    assert second.status_code == 201 and StoredUpload.objects.count() == 1


def test_the_phase_limit_and_kinds_still_apply_to_finished_uploads(db, django_capture_on_commit_callbacks):
    phase = algorithm_phase()
    participant = RegistrationFactory(challenge=phase.challenge).user
    client = logged_in(participant)
    over_phase = upload_all(client, payload(65 * KIB))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": over_phase["id"]}, format="json")
    assert response.status_code == 201
    failed = Submission.objects.get()
    assert failed.status == "failed" and "over this phase's limit of 64.0 KiB" in failed.error_message
    assert not StoredUpload.objects.exists()  # released: nothing else uses it
    wrong_kind = upload_all(client, payload(KIB), kind="predictions_zip", filename="p.zip")
    refused = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": wrong_kind["id"]}, format="json")
    assert refused.status_code == 400 and "algorithm archive" in refused.json()["upload"][0]
    unfinished = create(client, payload(KIB, seed=9)).json()["id"]
    refused = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": unfinished}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "bad_upload"
    strangers = upload_all(logged_in(UserFactory()), payload(KIB, seed=10))
    refused = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": strangers["id"]}, format="json")
    assert refused.status_code == 400 and "No upload session of yours" in refused.json()["upload"][0]
    both = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": strangers["id"], "file": io.BytesIO(b"x")})
    assert both.status_code == 400
    assert Submission.objects.count() == 1


def case_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("case_a/segmentation.nii.gz", b"not really an image")
    return buffer.getvalue()


def test_a_predictions_zip_submission_goes_through_the_zip_checks(db, settings):
    phase = PhaseFactory(task="metastatic-body-ct", extra_metrics=[], output_limit_mb=1, max_upload_bytes=KIB**2)
    participant = RegistrationFactory(challenge=phase.challenge).user
    client = logged_in(participant)
    session = upload_all(client, case_zip(), kind="predictions_zip", filename="predictions")
    response = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": session["id"]}, format="json")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    assert submission.predictions_file.name.endswith(".zip")  # what the scorer unpacks, whatever the file's name
    hostile = io.BytesIO()
    with zipfile.ZipFile(hostile, "w") as archive:
        archive.writestr("../../outside.txt", b"x")
    bad = upload_all(client, hostile.getvalue(), kind="predictions_zip", filename="bad.zip")
    response = client.post(f"/api/phases/{phase.pk}/submissions/", {"upload": bad["id"]}, format="json")
    failed = Submission.objects.get(pk=response.json()["id"])
    assert failed.status == "failed" and "points outside the archive" in failed.error_message


def test_the_page_form_takes_an_upload_session(db):
    phase = algorithm_phase()
    participant = RegistrationFactory(challenge=phase.challenge).user
    client = logged_in(participant)
    session = upload_all(client, payload(2 * KIB))
    from django.test import Client

    page = Client()
    page.force_login(participant)
    url = reverse("submissions:create", kwargs={"challenge": phase.challenge.slug, "phase": phase.slug})
    response = page.post(url, {"upload": session["id"], "comment": "big one"})
    assert response.status_code == 302, response.content.decode()[:2000]
    submission = Submission.objects.get()
    assert submission.comment == "big one" and submission.algorithm_archive.name
    empty = page.post(url, {"comment": "nothing"})
    assert empty.status_code == 200 and "Choose one file to upload." in empty.content.decode()


def test_partial_files_live_outside_the_stored_files(client, settings, tmp_path):
    settings.SPINEBENCH_UPLOAD_SESSIONS_DIR = str(tmp_path / "partials")
    data = payload(1500)
    session_id = create(client, data).json()["id"]
    put(client, session_id, data[:500], offset=0)
    assert os.listdir(tmp_path / "partials") == [f"{session_id}.part"]
    assert Path(tmp_path / "partials" / f"{session_id}.part").read_bytes() == data[:500]
