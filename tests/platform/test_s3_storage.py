"""Storage behind one interface, on an S3-compatible server: moto's server mode on 127.0.0.1 (s3_server.py; an
emulator of the S3 API; the same settings target AWS S3, MinIO, Ceph RGW, Cloudflare R2). The `s3` fixture switches
the default storage to django-storages' S3 backend with a fresh private bucket; each test then checks the objects
with its own boto3 client, independently of the platform's code: uploads land in the bucket and nowhere under
MEDIA_ROOT, what needs a path reads a checksum-verified local copy (a tampered copy is fetched again), figures,
dataset archives and algorithm outputs are stored there and read from there, byte ranges included; the backend is
chosen by environment settings."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.algorithms.execution import run_root, stored_predictions
from spinebench.algorithms.models import AlgorithmRun
from spinebench.algorithms.outputs import store_outputs
from spinebench.submissions.models import Submission
from spinebench.submissions.services import create_submission
from spinebench.uploads.local_cache import CacheError, local_copy, prune
from spinebench.uploads.models import StoredUpload, UploadSession

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import api, csv_upload
from .factories import RegistrationFactory
from .s3_server import keys, object_bytes, s3_endpoint_fixture, s3_fixture  # noqa: F401 (fixtures)
from .test_chunked_uploads import upload_all
from .test_plots import aasce_training_phase, fracture_csv, fracture_phase, get_png

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def nothing_under_media(name: str) -> bool:
    return not (Path(settings.MEDIA_ROOT) / name).exists()


def test_a_csv_submission_is_stored_in_the_bucket_and_scored(
    s3, phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    client, bucket = s3
    content = csv_upload(GOOD).read()
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=participant, upload=csv_upload(content=content))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    assert submission.evaluation.aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD), abs=1e-9)
    name = submission.predictions_file.name
    assert object_bytes(client, bucket, name) == content
    assert nothing_under_media(name)
    # Scoring read a local copy named by the bytes' digest, in the cache folder, not under MEDIA_ROOT.
    assert (Path(settings.SPINEBENCH_CACHE_DIR) / "stored" / f"{sha(content)}.csv").read_bytes() == content
    acl = client.get_object_acl(Bucket=bucket, Key=name)["Grants"]
    assert not [grant for grant in acl if "AllUsers" in grant["Grantee"].get("URI", "")], "no public-read ACL"


def case_folders_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for case in ("case_1", "case_2"):
            archive.writestr(f"{case}/segmentation.nii.gz", hashlib.sha256(case.encode()).digest() * 64)
    return buffer.getvalue()


def test_a_chunked_upload_lands_in_the_bucket_and_the_cache_is_filled_by_checksum(s3, db):
    client, bucket = s3
    user = RegistrationFactory().user
    data = case_folders_zip()
    session_client = APIClient()
    session_client.force_login(user)
    answer = upload_all(session_client, data, chunk=1000, kind="predictions_zip", filename="predictions.zip")
    stored = UploadSession.objects.get(pk=answer["id"]).stored
    assert stored is not None and stored.sha256 == sha(data)
    assert object_bytes(client, bucket, stored.storage_name) == data
    assert nothing_under_media(stored.storage_name)

    copy = local_copy(stored.storage_name)  # the digest recorded for the upload is the one checked
    assert copy == Path(settings.SPINEBENCH_CACHE_DIR) / "stored" / f"{sha(data)}.zip"
    assert copy.read_bytes() == data
    with zipfile.ZipFile(copy) as archive:  # a path the readers can open
        assert sorted(archive.namelist()) == ["case_1/segmentation.nii.gz", "case_2/segmentation.nii.gz"]

    copy.write_bytes(b"tampered" + data[8:])  # same size, other bytes: detected and fetched again
    again = local_copy(stored.storage_name)
    assert again == copy and again.read_bytes() == data

    # An object that no longer holds the recorded bytes is refused, never handed out.
    client.put_object(Bucket=bucket, Key=stored.storage_name, Body=b"not the archive")
    copy.unlink()
    with pytest.raises(CacheError, match="does not match the sha256"):
        local_copy(stored.storage_name)
    assert not copy.exists() and not list(copy.parent.glob(".partial-*"))


def test_the_cache_keeps_the_most_recently_used_copies_within_its_size(s3):
    _, bucket = s3
    contents = [bytes([index]) * 1000 for index in range(3)]
    names = [default_storage.save(f"algorithm-archives/{index}.tar", io.BytesIO(content))
             for index, content in enumerate(contents)]
    with override_settings(SPINEBENCH_CACHE_MAX_BYTES=2500):
        first = local_copy(names[0], sha256=sha(contents[0]))
        second = local_copy(names[1], sha256=sha(contents[1]))
        assert local_copy(names[0], sha256=sha(contents[0])) == first  # used again: now the most recent
        third = local_copy(names[2], sha256=sha(contents[2]))
        assert first.exists() and third.exists() and not second.exists()
        assert prune() == []
    assert StoredUpload.objects.count() == 0  # saved directly: the digest came from the caller


def test_figures_are_stored_in_the_bucket_and_served_from_it(
    s3, client, eager_tasks, django_capture_on_commit_callbacks
):
    s3_client, bucket = s3
    phase = fracture_phase(split="train", show_case_results=True)
    user = RegistrationFactory(challenge=phase.challenge).user
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
                    {"file": csv_upload(content=fracture_csv())})
    submission = Submission.objects.filter(phase=phase, creator=user).latest("pk")
    assert submission.status == "succeeded", submission.error_message
    status, body = get_png(client, reverse("submissions:plot", args=[submission.pk, "roc"]), user)
    assert status == 200 and body.startswith(b"\x89PNG\r\n\x1a\n")
    stored = keys(s3_client, bucket, f"plots/submission-{submission.pk}/")
    assert len(stored) == 1 and stored[0].startswith(f"plots/submission-{submission.pk}/roc-")
    assert object_bytes(s3_client, bucket, stored[0]) == body
    assert nothing_under_media(stored[0])
    # Served again from the stored object, not drawn again.
    s3_client.put_object(Bucket=bucket, Key=stored[0], Body=b"\x89PNG\r\n\x1a\nstored")
    assert get_png(client, reverse("submissions:plot", args=[submission.pk, "roc"]), user) == (
        200, b"\x89PNG\r\n\x1a\nstored"
    )


def test_dataset_archives_are_stored_in_the_bucket_and_answer_byte_ranges(s3, monkeypatch):
    from storages.backends.s3 import S3File

    s3_client, bucket = s3
    phase = aasce_training_phase()
    user = RegistrationFactory(challenge=phase.challenge).user
    dataset = phase.training_dataset
    caller = api(user)
    url = f"/api/datasets/{dataset.pk}/download/"
    full = caller.get(url)
    assert full.status_code == 200 and full["Accept-Ranges"] == "bytes"
    whole = b"".join(full.streaming_content)
    [name] = keys(s3_client, bucket, "dataset-archives/")
    assert object_bytes(s3_client, bucket, name) == whole and nothing_under_media(name)
    with zipfile.ZipFile(io.BytesIO(whole)) as archive:
        assert f"{dataset.slug}/dataset.json" in archive.namelist()

    # A range is one ranged GET: the object is never downloaded whole to answer it.
    def refuse_whole_download(self):
        raise AssertionError("the whole object was downloaded to answer a range")

    monkeypatch.setattr(S3File, "file", property(refuse_whole_download))
    size = len(whole)
    ranges = (("bytes=10-19", 10, 19), ("bytes=100-", 100, size - 1), ("bytes=-7", size - 7, size - 1))
    for header, first, last in ranges:
        part = caller.get(url, HTTP_RANGE=header, HTTP_IF_RANGE=full["ETag"])
        assert part.status_code == 206, header
        assert part["Content-Range"] == f"bytes {first}-{last}/{size}"
        assert b"".join(part.streaming_content) == whole[first:last + 1]
    assert caller.get(url, HTTP_RANGE=f"bytes={size}-").status_code == 416


def test_an_algorithm_runs_outputs_are_stored_and_read_back_on_a_host_without_its_folder(s3, phase, participant):
    s3_client, bucket = s3
    submission = Submission.objects.create(phase=phase, creator=participant)
    run = AlgorithmRun.objects.create(submission=submission)
    folder = run_root(run) / "predictions"
    written = {"case_a/angles.json": b'{"angles": [1, 2, 3]}', "case_b/angles.json": b'{"angles": [4, 5, 6]}'}
    for relative, content in written.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_bytes(content)
    name = store_outputs(run, folder=folder)
    assert keys(s3_client, bucket, "algorithm-outputs/") == [name]
    with stored_predictions(submission) as here:
        assert here == folder  # the worker that ran it reads its own folder
    for path in sorted(folder.rglob("*"), reverse=True):  # another host: no run folder on its disk
        if path.is_file():
            path.unlink()
        else:
            path.rmdir()
    folder.rmdir()
    with stored_predictions(submission) as elsewhere:
        found = {path.relative_to(elsewhere).as_posix(): path.read_bytes()
                 for path in elsewhere.rglob("*") if path.is_file()}
    assert found == written and not elsewhere.exists()



REPO = Path(__file__).resolve().parents[2]


def storage_from_environment(**variables) -> subprocess.CompletedProcess:
    """A fresh Django process on the base settings, its storage configured only by `variables`: the default
    storage's class and S3 options as JSON on stdout."""
    script = (
        "import django, json\n"
        "django.setup()\n"
        "from django.core.files.storage import storages\n"
        "s = storages['default']\n"
        "print(json.dumps([type(s).__name__] + [getattr(s, key, None) for key in "
        "('bucket_name', 'endpoint_url', 'access_key', 'default_acl', 'querystring_auth', 'file_overwrite')]))"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "SPINEBENCH_ST"))}
    environment.update(DJANGO_SETTINGS_MODULE="spinebench.settings.base", PYTHONPATH=str(REPO / "platform"),
                       SPINEBENCH_VAR_DIR=str(Path(settings.MEDIA_ROOT).parent / "var"), **variables)
    return subprocess.run([sys.executable, "-c", script], env=environment, capture_output=True, text=True,
                          timeout=120, cwd=REPO)


@pytest.mark.slow  # fresh interpreters, one per setting
def test_the_backend_is_chosen_by_environment_settings():
    assert json.loads(storage_from_environment().stdout)[0] == "FileSystemStorage"
    chosen = storage_from_environment(
        SPINEBENCH_STORAGE="s3", AWS_STORAGE_BUCKET_NAME="organizers-bucket", AWS_S3_ENDPOINT_URL="https://s3.example",
        AWS_ACCESS_KEY_ID="key-from-env", AWS_SECRET_ACCESS_KEY="secret-from-env",
    )
    assert chosen.returncode == 0, chosen.stderr
    assert json.loads(chosen.stdout) == ["S3Storage", "organizers-bucket", "https://s3.example", "key-from-env",
                                         None, True, False]
    missing = storage_from_environment(SPINEBENCH_STORAGE="s3")
    assert missing.returncode != 0 and "AWS_STORAGE_BUCKET_NAME" in missing.stderr
    unknown = storage_from_environment(SPINEBENCH_STORAGE="ftp")
    assert unknown.returncode != 0 and "SPINEBENCH_STORAGE='ftp'" in unknown.stderr


def test_with_the_filesystem_storage_a_stored_file_is_used_where_it_lies(tmp_path):
    with override_settings(SPINEBENCH_CACHE_DIR=tmp_path / "cache"):
        name = default_storage.save("algorithm-archives/local.tar", io.BytesIO(b"local bytes"))
        assert local_copy(name, sha256=sha(b"local bytes")) == Path(settings.MEDIA_ROOT) / name
        assert not (tmp_path / "cache" / "stored").exists() or not any((tmp_path / "cache" / "stored").iterdir())
        default_storage.delete(name)
