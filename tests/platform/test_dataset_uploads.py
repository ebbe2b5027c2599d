"""Datasets from the site (organizers.dataset_uploads): an organizer uploads a dataset zip on the console page or
through the API (a chunked upload session or one multipart file), a background job checks it and reports what it
found, and the organizer attaches it to a phase. Every hostile or broken zip is refused with a message naming the
file and leaves no dataset row, no folder and no stored zip behind."""

from __future__ import annotations

import hashlib
import io
import stat
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from spinebench.datasets.models import Dataset
from spinebench.organizers.models import AuditEvent, DatasetUpload
from spinebench.submissions.services import create_submission
from spinebench.uploads.models import StoredUpload

from .aasce_data import HIDDEN_ANGLES, predictions_csv, write_aasce_dataset
from .conftest import api
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

#: The uploaded test set: angles distinct from the factories' so a page search cannot hit them by accident.
UPLOADED_ANGLES = {"up_1": (41.0625, 12.4375, 9.8125), "up_2": (22.5625, 30.1875, 7.4375)}


def folder_zip(folder: Path, *, top: str = "", extra: dict[str, bytes] | None = None, drop: tuple[str, ...] = (),
               name: str = "dataset.zip") -> SimpleUploadedFile:
    """The dataset folder as a zip (optionally under one top folder), members in `drop` left out."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder).as_posix()
            if path.is_file() and relative not in drop:
                archive.write(path, f"{top}/{relative}" if top else relative)
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def with_symlink(upload: SimpleUploadedFile) -> SimpleUploadedFile:
    buffer = io.BytesIO(upload.read())
    with zipfile.ZipFile(buffer, "a") as archive:
        link = zipfile.ZipInfo("inputs/up_1/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return SimpleUploadedFile(upload.name, buffer.getvalue(), content_type="application/zip")


@pytest.fixture
def test_folder(tmp_path) -> Path:
    return write_aasce_dataset(tmp_path / "uploaded-test", UPLOADED_ANGLES, split="test")


@pytest.fixture
def train_folder(tmp_path) -> Path:
    folder = write_aasce_dataset(tmp_path / "uploaded-train", UPLOADED_ANGLES, split="train")
    # one training case without a label: allowed in a training split, listed in the report
    (folder / "ground_truth" / "angles.csv").write_text("case_id,pt,mt,tl\nup_1,41.0625,12.4375,9.8125\n")
    return folder


def leftovers(challenge) -> list[str]:
    folder = settings.DATASETS_ROOT / challenge.slug
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def upload_on_page(client, challenge, upload, capture, **fields):
    with capture(execute=True):
        return client.post(reverse("organizers:datasets", args=[challenge.slug]),
                           {"archive": upload, "slug": "uploaded", "title": "Uploaded test set",
                            "layout": "spinebench", "task": "", "split": "", **fields})


def test_an_organizer_uploads_checks_and_attaches_a_test_set_on_the_console(
    client, phase, organizer, participant, test_folder, eager_tasks, django_capture_on_commit_callbacks
):
    challenge = phase.challenge
    before = set(leftovers(challenge))
    client.force_login(organizer)
    response = upload_on_page(client, challenge, folder_zip(test_folder, top="uploaded-test"),
                              django_capture_on_commit_callbacks)
    assert response.status_code == 302, response.content.decode()[-2000:]
    job = DatasetUpload.objects.get()
    assert response["Location"] == reverse("organizers:dataset-upload", args=[challenge.slug, job.pk])
    assert (job.status, job.error) == ("ready", "")
    assert job.report["task"] == "aasce-cobb" and job.report["split"] == "test"
    assert job.report["cases"] == 2 and job.report["labelled_cases"] == 2
    assert job.report["missing_labels_count"] == 0 and job.report["groups"] == {}
    assert job.report["files"] == 4  # two images, angles.csv, dataset.json
    assert job.report["ground_truth_bytes"] == (test_folder / "ground_truth" / "angles.csv").stat().st_size
    # checked, not yet a dataset: nothing a participant could reach
    assert not Dataset.objects.filter(slug="uploaded").exists()
    assert set(leftovers(challenge)) == before | {"uploaded"}
    page = client.get(response["Location"]).content.decode()
    assert "Report" in page and 'id="report-cases">2<' in page

    attach = client.post(reverse("organizers:dataset-attach", args=[challenge.slug, job.pk]),
                         {"phase": phase.pk, "role": "test"})
    assert attach.status_code == 302, attach.content.decode()[-2000:]
    dataset = Dataset.objects.get(challenge=challenge, slug="uploaded")
    phase.refresh_from_db()
    assert phase.dataset == dataset and sorted(dataset.case_ids()) == sorted(UPLOADED_ANGLES)
    assert dataset.is_hidden
    actions = set(AuditEvent.objects.filter(challenge=challenge, actor=organizer).values_list("action", flat=True))
    assert {"dataset.upload", "dataset.attach"} <= actions
    listing = client.get(reverse("organizers:datasets", args=[challenge.slug])).content.decode()
    assert "uploaded" in listing and phase.title in listing

    # the phase page says what it is scored against; the test set's ground truth is never served
    client.force_login(participant)
    assert "Uploaded test set" in client.get(phase.get_absolute_url()).content.decode()
    assert client.get(reverse("datasets:download", args=[dataset.pk])).status_code == 404
    assert api(participant).get(f"/api/datasets/{dataset.pk}/download/").status_code == 404
    for angles in UPLOADED_ANGLES.values():
        for value in angles:
            assert str(value) not in client.get(phase.get_absolute_url()).content.decode()


def test_a_training_set_with_missing_labels_is_reported_and_offered_once_attached(
    client, phase, organizer, participant, train_folder, eager_tasks, django_capture_on_commit_callbacks
):
    challenge = phase.challenge
    client.force_login(organizer)
    upload_on_page(client, challenge, folder_zip(train_folder), django_capture_on_commit_callbacks, slug="extra")
    job = DatasetUpload.objects.get()
    assert job.status == "ready", job.error
    assert (job.report["missing_labels"], job.report["labelled_cases"]) == (["up_2"], 1)
    page = client.get(reverse("organizers:dataset-upload", args=[challenge.slug, job.pk])).content.decode()
    assert 'id="report-missing">1: up_2' in page
    response = client.post(reverse("organizers:dataset-attach", args=[challenge.slug, job.pk]),
                           {"phase": phase.pk, "role": "training"})
    assert response.status_code == 302
    dataset = Dataset.objects.get(slug="extra")
    client.force_login(participant)
    assert client.get(reverse("datasets:download", args=[dataset.pk])).status_code == 200
    # detached again: no longer offered
    client.force_login(organizer)
    detach = client.post(reverse("organizers:phase-datasets", args=[challenge.slug, phase.pk]),
                         {f"phase-{phase.pk}-training_dataset": ""})
    assert detach.status_code == 302
    phase.refresh_from_db()
    assert phase.training_dataset is None and phase.dataset is not None
    assert AuditEvent.objects.filter(challenge=challenge, action="dataset.detach").exists()
    client.force_login(participant)
    assert client.get(reverse("datasets:download", args=[dataset.pk])).status_code == 404


def test_a_public_layout_is_imported_with_the_task_and_split_named(
    client, phase, organizer, tmp_path, eager_tasks, django_capture_on_commit_callbacks
):
    buffer = io.BytesIO()
    Image.new("L", (12, 20), color=90).save(buffer, format="PNG")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("radiographs/patient one.png", buffer.getvalue())
        handle.writestr("radiographs/patient two.png", buffer.getvalue())
    client.force_login(organizer)
    upload_on_page(client, phase.challenge, SimpleUploadedFile("xr.zip", archive.getvalue()),
                   django_capture_on_commit_callbacks, slug="xr", layout="image", task="aasce-cobb", split="train")
    job = DatasetUpload.objects.get()
    assert job.status == "ready", job.error
    assert job.report["cases"] == 2 and job.report["missing_labels_count"] == 2


HOSTILE = [
    pytest.param(lambda f: folder_zip(f, extra={"../escape.txt": b"x"}), "request",
                 "points outside the archive", id="path traversal"),
    pytest.param(lambda f: with_symlink(folder_zip(f)), "request", "is a symbolic link", id="symlink"),
    pytest.param(lambda f: folder_zip(f, drop=("ground_truth/angles.csv",)), "job",
                 "ground_truth/: no ground truth for case(s) up_1, up_2", id="missing label file"),
    pytest.param(lambda f: folder_zip(f, drop=("inputs/up_2/image.png",)), "job",
                 "inputs/up_2/: missing or empty; dataset.json lists case 'up_2', expected image.png",
                 id="missing input"),
    pytest.param(lambda f: folder_zip(f, drop=("dataset.json",)), "job", "dataset.json: not found",
                 id="wrong layout"),
    pytest.param(lambda f: folder_zip(f, extra={"ground_truth/angles.csv": b"case_id,pt\nup_1,3\n"},
                                      drop=("ground_truth/angles.csv",)),
                 "job", "ground_truth/", id="malformed label file"),
    pytest.param(lambda f: folder_zip(f, extra={"inputs/up_1/padding.raw": b"\0" * 300_000}), "request",
                 "unpacks to more than", id="bomb"),
    pytest.param(lambda f: SimpleUploadedFile("dataset.zip", b"not a zip at all"), "request", "not a zip archive",
                 id="not a zip"),
]


@pytest.mark.parametrize(("make", "where", "message"), HOSTILE)
def test_hostile_or_broken_zips_change_nothing_and_say_why(
    client, phase, organizer, test_folder, settings, eager_tasks, django_capture_on_commit_callbacks, make, where,
    message
):
    settings.SPINEBENCH_MAX_DATASET_UNPACKED_BYTES = 200_000
    challenge = phase.challenge
    before = (Dataset.objects.count(), StoredUpload.objects.count(), leftovers(challenge))
    client.force_login(organizer)
    response = upload_on_page(client, challenge, make(test_folder), django_capture_on_commit_callbacks)
    if where == "request":
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not DatasetUpload.objects.exists()
    else:
        job = DatasetUpload.objects.get()
        assert job.status == "failed" and message in job.error, job.error
        page = client.get(reverse("organizers:dataset-upload", args=[challenge.slug, job.pk])).content.decode()
        assert "Nothing was kept" in page
    assert (Dataset.objects.count(), StoredUpload.objects.count(), leftovers(challenge)) == before
    assert not (settings.DATASETS_ROOT / challenge.slug / "uploaded").exists()


def test_an_import_refusal_names_the_file_inside_the_zip(
    client, phase, organizer, eager_tasks, django_capture_on_commit_callbacks
):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("scans/readme.txt", b"no images here")
        handle.writestr("scans/notes/more.txt", b"none here either")
    client.force_login(organizer)
    upload_on_page(client, phase.challenge, SimpleUploadedFile("scans.zip", archive.getvalue()),
                   django_capture_on_commit_callbacks, slug="scans", layout="image", task="aasce-cobb", split="test")
    job = DatasetUpload.objects.get()
    assert job.status == "failed"
    assert job.error.startswith("scans: no image files"), job.error
    assert str(settings.DATASETS_ROOT) not in job.error and "checking" not in job.error
    assert "scans" not in leftovers(phase.challenge) and not StoredUpload.objects.exists()


def test_field_errors_are_keyed(client, phase, organizer, test_folder, django_capture_on_commit_callbacks):
    client.force_login(organizer)
    taken = upload_on_page(client, phase.challenge, folder_zip(test_folder), django_capture_on_commit_callbacks,
                           slug=phase.dataset.slug)
    assert taken.status_code == 400 and "already has a dataset" in taken.content.decode()
    no_task = api(organizer).post("/api/organizers/dataset-uploads/", {
        "challenge": phase.challenge.slug, "slug": "new", "layout": "image", "archive": folder_zip(test_folder),
    }, format="multipart")
    assert no_task.status_code == 400 and set(no_task.json()) == {"task", "split"}
    bad_layout = api(organizer).post("/api/organizers/dataset-uploads/", {
        "challenge": phase.challenge.slug, "slug": "new", "layout": "nifti-zoo", "archive": folder_zip(test_folder),
    }, format="multipart")
    assert bad_layout.status_code == 400 and "layout" in bad_layout.json()
    neither = api(organizer).post("/api/organizers/dataset-uploads/",
                                  {"challenge": phase.challenge.slug, "slug": "new"}, format="json")
    assert neither.status_code == 400 and "archive" in neither.json()
    assert not DatasetUpload.objects.exists() and not StoredUpload.objects.exists()


def _chunked_session(client, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()
    created = client.post("/api/uploads/", {"kind": "dataset", "size": len(content), "sha256": digest,
                                            "filename": "test.zip"}, format="json")
    assert created.status_code == 201, created.json()
    session = created.json()
    put = client.generic("PUT", f"/api/uploads/{session['id']}/?offset=0", content,
                         content_type="application/octet-stream", HTTP_UPLOAD_CHUNK_SHA256=digest)
    assert put.status_code == 200, put.json()
    assert client.post(f"/api/uploads/{session['id']}/finalise/").status_code == 200
    return session["id"]


def test_the_api_takes_a_chunked_session_reports_and_attaches(
    phase, organizer, participant, test_folder, eager_tasks, django_capture_on_commit_callbacks
):
    client = api(organizer)
    session = _chunked_session(client, folder_zip(test_folder).read())
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/organizers/dataset-uploads/", {
            "challenge": phase.challenge.slug, "slug": "api-test", "upload": session}, format="json")
    assert created.status_code == 202, created.json()
    job = client.get(f"/api/organizers/dataset-uploads/{created.json()['id']}/").json()
    assert job["status"] == "ready" and job["report"]["cases"] == 2 and job["dataset"] is None
    listed = client.get(f"/api/organizers/dataset-uploads/?challenge={phase.challenge.slug}").json()
    items = listed["results"] if isinstance(listed, dict) else listed
    assert [item["id"] for item in items] == [job["id"]]
    # someone else never sees or acts on it
    for outsider in (participant, UserFactory()):
        assert api(outsider).get(f"/api/organizers/dataset-uploads/{job['id']}/").status_code == 404
        assert api(outsider).post(f"/api/organizers/dataset-uploads/{job['id']}/attach/",
                                  {"phase": phase.pk, "role": "test"}, format="json").status_code == 404
    attached = client.post(f"/api/organizers/dataset-uploads/{job['id']}/attach/",
                           {"phase": phase.pk, "role": "test"}, format="json")
    assert attached.status_code == 200, attached.json()
    datasets = client.get(f"/api/organizers/phases/{phase.pk}/datasets/").json()
    assert datasets["dataset"]["slug"] == "api-test" and datasets["dataset"]["cases"] == 2
    # a test split is never a training dataset
    wrong = client.patch(f"/api/organizers/phases/{phase.pk}/datasets/",
                         {"training_dataset": datasets["dataset"]["id"]}, format="json")
    assert wrong.status_code == 400 and "training_dataset" in wrong.json()
    # a used upload is a dataset: it cannot be discarded
    assert client.delete(f"/api/organizers/dataset-uploads/{job['id']}/").status_code == 400


def test_the_scored_dataset_of_a_phase_with_scored_submissions_stays(
    phase, organizer, participant, test_folder, eager_tasks, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=participant, upload=SimpleUploadedFile(
            "p.csv", predictions_csv(HIDDEN_ANGLES), content_type="text/csv"))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    scored = phase.dataset
    client = api(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/organizers/dataset-uploads/", {
            "challenge": phase.challenge.slug, "slug": "late", "archive": folder_zip(test_folder)},
            format="multipart")
    assert created.status_code == 202, created.json()
    refused = client.post(f"/api/organizers/dataset-uploads/{created.json()['id']}/attach/",
                          {"phase": phase.pk, "role": "test"}, format="json")
    assert refused.status_code == 400 and "scored submission" in refused.json()["dataset"][0]
    assert client.patch(f"/api/organizers/phases/{phase.pk}/datasets/", {"dataset": None},
                        format="json").status_code == 400
    phase.refresh_from_db()
    assert phase.dataset == scored
    assert not Dataset.objects.filter(slug="late").exists()
    # discarding the unused upload removes its folder and zip
    assert client.delete(f"/api/organizers/dataset-uploads/{created.json()['id']}/").status_code == 204
    assert "late" not in leftovers(phase.challenge) and not DatasetUpload.objects.exists()
    assert AuditEvent.objects.filter(action="dataset.discard").exists()


def test_another_challenges_organizer_is_refused(client, phase, test_folder, django_capture_on_commit_callbacks):
    other = PhaseFactory().challenge
    stranger = UserFactory()
    other.organizers.add(stranger)
    RegistrationFactory(challenge=phase.challenge, user=UserFactory())
    client.force_login(stranger)
    response = upload_on_page(client, phase.challenge, folder_zip(test_folder), django_capture_on_commit_callbacks)
    assert response.status_code == 404
    created = api(stranger).post("/api/organizers/dataset-uploads/", {
        "challenge": phase.challenge.slug, "slug": "x", "archive": folder_zip(test_folder)}, format="multipart")
    assert created.status_code == 400 and created.json() == {
        "challenge": ["No challenge you organize has this slug."]}
    assert not DatasetUpload.objects.exists()


def test_a_check_that_lost_its_worker_is_failed_and_leaves_nothing(phase, organizer, test_folder, settings):
    from datetime import timedelta

    from django.utils import timezone

    from spinebench.organizers.dataset_uploads import start_dataset_upload, sweep_stale_checks

    challenge = phase.challenge
    before = leftovers(challenge)
    job = start_dataset_upload(challenge=challenge, actor=organizer, slug="crashed", upload=folder_zip(test_folder))
    # as a worker killed mid-check leaves it: running, a scratch folder and the dataset folder half renamed
    started = timezone.now() - timedelta(seconds=settings.SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S + 5)
    DatasetUpload.objects.filter(pk=job.pk).update(status="running", started=started)
    root = settings.DATASETS_ROOT / challenge.slug
    (root / ".crashed.checking-x1" / "zip").mkdir(parents=True)
    (root / "crashed").mkdir()
    fresh = start_dataset_upload(challenge=challenge, actor=organizer, slug="fresh", upload=folder_zip(
        test_folder, name="other.zip", extra={"README": b"another zip"}))
    DatasetUpload.objects.filter(pk=fresh.pk).update(status="running", started=timezone.now())

    assert sweep_stale_checks() == 1
    job.refresh_from_db()
    assert job.status == "failed" and "time limit" in job.error
    assert DatasetUpload.objects.get(pk=fresh.pk).status == "running"  # within its limit: left alone
    assert leftovers(challenge) == before
    assert not StoredUpload.objects.filter(storage_name=job.archive).exists()
    assert sweep_stale_checks() == 0
