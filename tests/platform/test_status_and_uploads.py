"""The status state machine and the platform-level upload checks."""

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http.multipartparser import MultiPartParser
from rest_framework.test import APIClient

from spinebench.submissions.models import Submission
from spinebench.submissions.services import SubmissionRefused, create_submission
from spinebench.submissions.status import (
    ALLOWED,
    COUNTED,
    TERMINAL,
    Status,
    TransitionError,
    can_transition,
    transition,
)
from spinebench.submissions.tasks import score_submission
from spinebench.submissions.uploads import UploadError, check_size, check_utf8_text
from spinebench.uploads.handlers import LimitedUploadHandler
from spinebench.uploads.limits import UploadLimit
from spinebench.uploads.models import StoredUpload
from spinebench.uploads.services import challenge_account_key, store_upload

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory


class Job:
    def __init__(self, status):
        self.pk, self.status, self.error_message = 1, status, ""


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        ("pending", "validating", True),
        ("validating", "queued", True),
        ("queued", "running", True),
        ("queued", "scoring", True),
        ("running", "scoring", True),
        ("scoring", "succeeded", True),
        ("scoring", "queued", True),
        ("pending", "succeeded", False),
        ("queued", "succeeded", False),
        ("succeeded", "failed", False),
        ("failed", "queued", False),
        ("cancelled", "running", False),
    ],
)
def testtransitions(current, target, allowed):
    assert can_transition(current, target) is allowed
    job = Job(current)
    if allowed:
        transition(job, target, error="why", save=False)
        assert job.status == target and job.error_message == "why"
    else:
        with pytest.raises(TransitionError, match=f"{current} -> {target}"):
            transition(job, target, save=False)


def test_terminal_and_counted_sets():
    assert TERMINAL == {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED}
    assert Status.FAILED not in COUNTED and Status.CANCELLED not in COUNTED and Status.SUCCEEDED in COUNTED
    assert set(ALLOWED) == set(Status.values)


def test_size_limits():
    with pytest.raises(UploadError, match="empty"):
        check_size(0, limit=10, name="p.csv")
    with pytest.raises(UploadError, match=r"p.csv: the file is 2.0 KiB, over this phase's limit of 1.0 KiB"):
        check_size(2048, limit=1024, name="p.csv")
    check_size(1024, limit=1024, name="p.csv")


def chunks(data: bytes, size: int = 4):
    stream = io.BytesIO(data)
    return iter(lambda: stream.read(size), b"")


def test_not_utf8_names_line_and_byte():
    with pytest.raises(UploadError, match=r"byte 0xff at line 3 \(byte offset 17\)"):
        check_utf8_text(chunks(b"case_id,pt\na,1.0\n\xff"), name="p.csv")


def test_multibyte_character_split_across_chunks_is_fine():
    check_utf8_text(chunks("case_id,pt\nä,1\n".encode(), size=12), name="p.csv")


def test_truncated_multibyte_and_blank_files():
    with pytest.raises(UploadError, match="inside a multi-byte character"):
        check_utf8_text(chunks("a,ä".encode()[:-1]), name="p.csv")
    with pytest.raises(UploadError, match="only whitespace"):
        check_utf8_text(chunks(b" \n\n "), name="p.csv")


# ------------------------------------------------------------------------------------------ H2: disk filling
# Each test below reproduces an attack of issue #16 (H2): on commit b6644e4 the upload was stored before any size
# check, refused files stayed on disk, nothing counted against a storage quota and SPINEBENCH_MAX_UPLOAD_BYTES was
# read nowhere.


def stored_files() -> list[Path]:
    """Submission files in storage (other tests of the session leave checkpoints and plots in MEDIA_ROOT)."""
    root = Path(settings.MEDIA_ROOT) / "submissions"
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


def padded_csv(size: int) -> bytes:
    """A valid predictions CSV padded with trailing blank lines to `size` bytes."""
    data = predictions_csv(HIDDEN_ANGLES)
    return data + b"\n" * (size - len(data))


def logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_api_refuses_an_over_size_body_with_413_and_stores_nothing(phase, participant):
    phase.max_upload_bytes = 1024
    phase.save()
    before = stored_files()
    response = logged_in(participant).post(
        f"/api/phases/{phase.pk}/submissions/",
        {"file": SimpleUploadedFile("p.csv", padded_csv(200_000))},
        format="multipart",
    )
    assert response.status_code == 413, response.content
    body = response.json()
    assert body["code"] == "too_large" and body["limit_bytes"] == 1024
    assert "this phase's limit of 1.0 KiB" in body["detail"]
    assert not Submission.objects.exists() and not StoredUpload.objects.exists()
    assert stored_files() == before


@pytest.mark.django_db
def test_page_refuses_an_over_size_body_with_the_limit_named(phase, participant):
    """With CSRF checks on, as in production: CsrfViewMiddleware reads the body, so the limit must be installed
    before it (spinebench.uploads.middleware sits earlier)."""
    from django.test import Client

    before = stored_files()
    phase.max_upload_bytes = 1024
    phase.save()
    client = Client(enforce_csrf_checks=True)
    client.force_login(participant)
    url = f"/submissions/new/{phase.challenge.slug}/{phase.slug}/"
    assert client.get(url).status_code == 200
    token = client.cookies["csrftoken"].value
    response = client.post(
        url, {"file": SimpleUploadedFile("p.csv", padded_csv(5000)), "comment": "big", "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 413
    assert "over this phase&#x27;s limit of 1.0 KiB" in response.content.decode()
    assert not Submission.objects.exists() and stored_files() == before
    accepted = client.post(
        url, {"file": SimpleUploadedFile("p.csv", padded_csv(600)), "comment": "ok", "csrfmiddlewaretoken": token}
    )
    assert accepted.status_code == 302 and Submission.objects.count() == 1


@pytest.mark.django_db
def test_a_declared_over_size_page_upload_is_answered_unread(client, phase, participant):
    """Over the limit by its Content-Length: a 413 page before CSRF or the view read anything."""
    phase.max_upload_bytes = 1024
    phase.save()
    client.force_login(participant)
    url = f"/submissions/new/{phase.challenge.slug}/{phase.slug}/"
    response = client.post(url, {"file": SimpleUploadedFile("p.csv", padded_csv(300_000))})
    assert response.status_code == 413 and "Upload refused" in response.content.decode()
    assert "The upload is 293.1 KiB, over this phase&#x27;s limit of 1.0 KiB" in response.content.decode()
    assert not Submission.objects.exists()


@pytest.mark.django_db
def test_the_global_cap_setting_applies_when_stricter_than_the_phase(phase, participant, settings):
    settings.SPINEBENCH_MAX_UPLOAD_BYTES = 2048
    phase.max_upload_bytes = 10 * 1024**2
    phase.save()
    response = logged_in(participant).post(
        f"/api/phases/{phase.pk}/submissions/",
        {"file": SimpleUploadedFile("p.csv", padded_csv(100_000))},
        format="multipart",
    )
    assert response.status_code == 413 and "the site's limit of 2.0 KiB" in response.json()["detail"]
    assert not Submission.objects.exists()


class CountingStream:
    """A request body that records how many bytes the server read from it."""

    def __init__(self, data: bytes):
        self.data, self.read_bytes = data, 0

    def read(self, size=-1):
        size = len(self.data) - self.read_bytes if size is None or size < 0 else size
        chunk = self.data[self.read_bytes : self.read_bytes + size]
        self.read_bytes += len(chunk)
        return chunk


def multipart_body(payload: bytes, boundary: str = "BOUNDARY") -> bytes:
    return (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="p.csv"\r\n'
            f"Content-Type: text/csv\r\n\r\n"
        ).encode()
        + payload
        + f"\r\n--{boundary}--\r\n".encode()
    )


def parse(body: bytes, *, limit: int, declared: int | None = None):
    class Request:  # the handler records its refusal on the request
        upload_refusal = None

    request, stream = Request(), CountingStream(body)
    meta = {"CONTENT_TYPE": "multipart/form-data; boundary=BOUNDARY", "CONTENT_LENGTH": str(declared or len(body))}
    handler = LimitedUploadHandler(request, limit=UploadLimit(bytes=limit, owner="this phase's"))
    _, files = MultiPartParser(meta, stream, [handler]).parse()
    return request.upload_refusal, files, stream, handler


def test_the_handler_stops_reading_while_streaming():
    limit = 256 * 1024
    body = multipart_body(b"x" * (limit + 60 * 1024))  # within the declared-length slack: caught while streaming
    refusal, files, _stream, handler = parse(body, limit=limit)
    assert (
        refusal is not None and refusal.code == "too_large" and "passed 256.0 KiB while it was received" in str(refusal)
    )
    assert not files
    assert handler.received <= limit + handler.chunk_size
    assert handler.file.closed  # its quarantine file is closed, so deleted
    assert not Path(handler.file.file.name).exists()


def test_a_declared_over_size_body_is_refused_unread():
    body = multipart_body(b"x" * (2 * 1024**2))
    refusal, files, stream, _ = parse(body, limit=1024**2)
    assert refusal is not None and "over this phase's limit of 1.0 MiB" in str(refusal)
    assert stream.read_bytes == 0 and not files


def test_an_accepted_file_carries_its_sha256():
    payload = b"case_id,pt,mt,tl\n"
    refusal, files, _, _ = parse(multipart_body(payload), limit=1024)
    assert refusal is None
    assert files["file"].read() == payload and files["file"].sha256 == hashlib.sha256(payload).hexdigest()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content"), [("p.csv", b"case_id,pt,mt,tl\n\xff\xfe"), ("p.csv", b""), ("p.csv", b" \n\n")]
)
def test_a_file_failing_validation_is_never_stored(phase, participant, name, content):
    before = stored_files()
    submission = create_submission(phase=phase, user=participant, upload=SimpleUploadedFile(name, content))
    assert submission.status == "failed" and submission.error_message
    assert not submission.predictions_file and stored_files() == before
    assert not StoredUpload.objects.exists()


@pytest.mark.django_db
def test_a_file_failing_at_scoring_is_deleted_and_no_longer_charged(
    phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    before = stored_files()
    content = b"case_id,pt,mt,tl\ncase_a,1,2,3\n"  # sound text, but cases are missing: the evaluator refuses it
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=participant, upload=SimpleUploadedFile("p.csv", content))
    submission.refresh_from_db()
    assert submission.status == "failed" and "no prediction for case(s)" in submission.error_message
    assert not submission.predictions_file and stored_files() == before
    assert not StoredUpload.objects.exists()


@pytest.mark.django_db
def test_an_accepted_upload_is_recorded_and_charged(phase, participant):
    content = predictions_csv(HIDDEN_ANGLES)
    submission = create_submission(phase=phase, user=participant, upload=SimpleUploadedFile("mine.csv", content))
    record = StoredUpload.objects.get()
    assert record.storage_name == submission.predictions_file.name and record.storage_name.endswith(".csv")
    assert record.account.key == f"user:{participant.pk}" and record.owner == participant
    assert record.size == len(content) and record.sha256 == hashlib.sha256(content).hexdigest()
    assert record.kind == StoredUpload.Kind.PREDICTIONS_CSV and record.original_name == "mine.csv"
    assert Path(submission.predictions_file.path).read_bytes() == content


@pytest.mark.django_db
def test_the_storage_quota_refuses_before_storing(phase, participant, settings):
    content = predictions_csv(HIDDEN_ANGLES)
    settings.SPINEBENCH_USER_STORAGE_QUOTA_BYTES = int(len(content) * 1.5)
    create_submission(phase=phase, user=participant, upload=SimpleUploadedFile("a.csv", content))
    files = stored_files()
    with pytest.raises(SubmissionRefused, match="would pass your storage quota") as refusal:
        create_submission(phase=phase, user=participant, upload=SimpleUploadedFile("b.csv", content))
    assert refusal.value.code == "quota"
    assert stored_files() == files and Submission.objects.count() == 1
    response = logged_in(participant).post(
        f"/api/phases/{phase.pk}/submissions/", {"file": SimpleUploadedFile("c.csv", content)}, format="multipart"
    )
    assert response.status_code == 413 and response.json()["code"] == "quota"


@pytest.mark.django_db
def test_organizer_data_is_charged_to_the_challenge(phase, organizer, settings):
    settings.SPINEBENCH_CHALLENGE_STORAGE_QUOTA_BYTES = 10
    key = challenge_account_key(phase.challenge_id)
    store_upload(
        upload=SimpleUploadedFile("d.zip", b"12345678"),
        account_key=key,
        owner=organizer,
        kind=StoredUpload.Kind.DATASET,
        folder="datasets",
    )
    with pytest.raises(Exception, match="storage quota of 10 bytes") as refusal:
        store_upload(
            upload=SimpleUploadedFile("e.zip", b"123"),
            account_key=key,
            owner=organizer,
            kind=StoredUpload.Kind.DATASET,
            folder="datasets",
        )
    assert refusal.value.code == "quota" and StoredUpload.objects.filter(account__key=key).count() == 1


# ---------------------------------------------------------- H3 / H4 / M2: prediction zips that are hostile or broken
# On commit b6644e4 each of these passed the upload check (which read only the directory) and then raised inside the
# scoring task's extractall, leaving the submission in `scoring` for good; the bomb was unpacked before any check.


SEGMENTATION = "case_a/segmentation.nii.gz"
PAYLOAD = b"PAYLOAD-" * 64


def build_zip(entries, *, method=zipfile.ZIP_STORED) -> bytes:
    """entries: (name or ZipInfo, data) pairs."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


def patch_headers(data: bytes, *, local_offset: int, central_offset: int, value: bytes) -> bytes:
    """Overwrite a field in the first member's local header and central-directory entry."""
    data = bytearray(data)
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    data[local + local_offset : local + local_offset + len(value)] = value
    data[central + central_offset : central + central_offset + len(value)] = value
    return bytes(data)


def symlink_entry(name: str, target: str):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def bad_crc() -> bytes:
    return build_zip([(SEGMENTATION, PAYLOAD)]).replace(PAYLOAD, PAYLOAD[:-1] + b"?", 1)


def corrupt_deflate() -> bytes:
    data = bytearray(build_zip([(SEGMENTATION, bytes(range(256)) * 64)], method=zipfile.ZIP_DEFLATED))
    start = data.find(b"PK\x03\x04") + 30 + len(SEGMENTATION)
    data[start + 2 : start + 40] = b"\xff" * 38
    return bytes(data)


HOSTILE_ZIPS = {
    "bad CRC": (bad_crc, "is corrupt (bad CRC-32)"),
    "encrypted flag": (
        lambda: patch_headers(
            build_zip([(SEGMENTATION, PAYLOAD)]), local_offset=6, central_offset=8, value=b"\x01\x00"
        ),
        "is encrypted",
    ),
    "unknown method": (
        lambda: patch_headers(
            build_zip([(SEGMENTATION, PAYLOAD)]), local_offset=8, central_offset=10, value=b"\x63\x00"
        ),
        "uses compression method 99",
    ),
    "corrupt data": (corrupt_deflate, "could not be decompressed (damaged data)"),
    "300-character name": (
        lambda: build_zip([(f"case_a/{'n' * 300}.nii.gz", PAYLOAD)]),
        "has a name of 307 characters",
    ),
    "file/folder clash": (lambda: build_zip([("case_a", b"x"), (SEGMENTATION, PAYLOAD)]), "which is a file"),
    "folder/file clash": (
        lambda: build_zip([(SEGMENTATION + "/", b""), (SEGMENTATION, PAYLOAD)]),
        "appears twice, or is both",
    ),
    "duplicate member": (lambda: build_zip([(SEGMENTATION, PAYLOAD), (SEGMENTATION, PAYLOAD)]), "appears twice"),
    "symlink": (lambda: build_zip([symlink_entry(SEGMENTATION, "/etc/passwd")]), "is a symbolic link"),
    "symlink loop": (
        lambda: build_zip([symlink_entry("case_a/a.json", "b.json"), symlink_entry("case_a/b.json", "a.json")]),
        "is a symbolic link",
    ),
    "too many entries": (
        lambda: build_zip([(f"case_{i}/x.txt", b"1") for i in range(12)]),
        "12 entries, more than the 10",
    ),
    "bomb": (
        lambda: build_zip([(SEGMENTATION, bytes(3 * 1024**2))], method=zipfile.ZIP_DEFLATED),
        "unpacks to more than 1.0 MiB",
    ),
    "escape": (lambda: build_zip([("../../outside.txt", b"x")]), "points outside the archive"),
}


@pytest.fixture
def zip_phase(db, settings):
    settings.SPINEBENCH_ZIP_MAX_ENTRIES = 10
    return PhaseFactory(task="metastatic-body-ct", extra_metrics=[], output_limit_mb=1, max_upload_bytes=10 * 1024**2)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("kind", list(HOSTILE_ZIPS))
def test_hostile_zip_fails_at_upload_with_the_reason(zip_phase, kind):
    from tests.platform.factories import RegistrationFactory

    build, message = HOSTILE_ZIPS[kind]
    before = stored_files()
    user = RegistrationFactory(challenge=zip_phase.challenge).user
    submission = create_submission(phase=zip_phase, user=user, upload=SimpleUploadedFile("p.zip", build()))
    assert submission.status == "failed", kind
    assert message in submission.error_message and "p.zip" in submission.error_message
    assert stored_files() == before


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("kind", list(HOSTILE_ZIPS))
def test_stored_zip_that_cannot_be_unpacked_fails_scoring_at_once(zip_phase, kind, tmp_path):
    """A zip already in storage (accepted before this check existed, or damaged on disk) must end `failed` with the
    reason when the scoring task unpacks it, not stay in `scoring`; nothing lands outside the unpack folder."""
    from django.core.files.base import ContentFile

    build, message = HOSTILE_ZIPS[kind]
    submission = Submission(phase=zip_phase, comment="stored before the upload check")
    submission.predictions_file.save("old.zip", ContentFile(build()), save=False)
    submission.save()
    transition(submission, Status.VALIDATING)
    transition(submission, Status.QUEUED)
    assert score_submission(submission_pk=submission.pk) == "failed"
    submission.refresh_from_db()
    assert submission.status == "failed" and message in submission.error_message
    assert not (Path(settings.MEDIA_ROOT).parent / "outside.txt").exists()


@pytest.mark.django_db
def test_algorithm_archives_take_the_same_path(participant, phase):
    from spinebench.challenges.models import Phase
    from spinebench.workers.services import record_heartbeat

    phase.submission_kind = Phase.SubmissionKind.ALGORITHM
    phase.max_upload_bytes = 4096
    phase.save()
    record_heartbeat(hostname="containers@test", queues=["containers-cpu"])  # a live container worker serves it
    client = logged_in(participant)
    too_big = client.post(
        f"/api/phases/{phase.pk}/submissions/",
        {"file": SimpleUploadedFile("a.tar", b"\0" * 100_000)},
        format="multipart",
    )
    assert too_big.status_code == 413 and "this phase's limit of 4.0 KiB" in too_big.json()["detail"]
    response = client.post(
        f"/api/phases/{phase.pk}/submissions/", {"file": SimpleUploadedFile("a.tar", b"\0" * 2048)}, format="multipart"
    )
    assert response.status_code == 201, response.content
    submission = Submission.objects.get()
    record = StoredUpload.objects.get()
    assert (
        record.kind == StoredUpload.Kind.ALGORITHM_ARCHIVE and record.storage_name == submission.algorithm_archive.name
    )
    assert submission.status == "queued" and not submission.predictions_file
