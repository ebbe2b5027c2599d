"""An algorithm submission with the default storage on an S3-compatible bucket (moto's server mode on 127.0.0.1,
tests/platform/s3_server.py) and the real engine: the archive is stored in the bucket and nowhere under MEDIA_ROOT,
validated and loaded from a local copy named by its sha256, and the run's outputs are stored in the bucket too."""

import hashlib
from pathlib import Path

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from spinebench.submissions.models import Submission
from spinebench.uploads.models import StoredUpload
from tests.platform.s3_server import keys, object_bytes, s3_endpoint_fixture, s3_fixture  # noqa: F401 (fixtures)

from .conftest import EXAMPLE_IMAGE

pytestmark = pytest.mark.django_db


@pytest.mark.docker
def test_an_algorithm_archive_in_the_bucket_runs_from_a_checksum_verified_local_copy(
    s3, algorithm_phase, algorithm_participant, saved_images, eager_tasks, django_capture_on_commit_callbacks
):
    client, bucket = s3
    archive = saved_images(EXAMPLE_IMAGE)
    digest = hashlib.sha256(Path(archive).read_bytes()).hexdigest()
    api = APIClient()
    api.force_authenticate(algorithm_participant)
    with django_capture_on_commit_callbacks(execute=True), open(archive, "rb") as handle:
        response = api.post(f"/api/phases/{algorithm_phase.pk}/submissions/", {"file": handle}, format="multipart")
    assert response.status_code == 201, response.content
    submission = Submission.objects.get(pk=response.json()["id"])
    assert submission.status == "succeeded", submission.error_message
    name = submission.algorithm_archive.name
    assert StoredUpload.objects.get(storage_name=name).sha256 == digest
    assert hashlib.sha256(object_bytes(client, bucket, name)).hexdigest() == digest
    assert not (Path(settings.MEDIA_ROOT) / name).exists()
    cached = Path(settings.SPINEBENCH_CACHE_DIR) / "stored" / f"{digest}.tar"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest
    run = submission.algorithm_run
    assert keys(client, bucket, "algorithm-outputs/") == [f"algorithm-outputs/{submission.pk}-{run.key.hex}.zip"]
    assert submission.evaluation.rank == 1
