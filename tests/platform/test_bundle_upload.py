"""Challenge bundles uploaded through the site and the API (untrusted profile + the database rules): a good bundle
is imported in the background with the uploader as its organizer; every hostile bundle (a server path, `../`, an
organizers list, someone else's slug, a zip that escapes) is refused with a key-exact message and changes nothing."""

from __future__ import annotations

import io
import zipfile

import pytest
import yaml
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from spinebench.challenges.models import Challenge, Phase
from spinebench.datasets.models import Dataset
from spinebench.organizers.models import AuditEvent, BundleImport
from spinebench.uploads.models import StoredUpload

from .factories import ChallengeFactory, UserFactory

pytestmark = pytest.mark.django_db


def bundle(**challenge) -> dict:
    return {
        "challenge": {"slug": "uploaded", "title": "Uploaded challenge", **challenge},
        "datasets": {
            "train": {"task": "aasce-cobb", "split": "train", "generate": {"cases": 2, "seed": 4, "small": True}},
            "test": {"task": "aasce-cobb", "split": "test", "generate": {"cases": 2, "seed": "secret", "small": True}},
        },
        "phases": [{"slug": "test", "title": "Test", "task": "aasce-cobb", "dataset": "test",
                    "training_dataset": "train"}],
    }


def zipped(data: dict | None = None, *, extra: dict[str, bytes] | None = None, name: str = "bundle.zip"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if data is not None:
            archive.writestr("challenge.yaml", yaml.safe_dump(data))
        for member, content in (extra or {}).items():
            archive.writestr(member, content)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="application/zip")


def snapshot() -> tuple:
    return (
        list(Challenge.objects.values_list("slug", "title", "description")),
        Phase.objects.count(), Dataset.objects.count(), BundleImport.objects.count(), StoredUpload.objects.count(),
        AuditEvent.objects.count(), sorted(p.name for p in settings.DATASETS_ROOT.glob("*")),
    )


def test_a_bundle_uploaded_on_the_page_is_imported_in_the_background(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    user = UserFactory()
    client.force_login(user)
    data = bundle(description_file="about.md")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("organizers:import"), {
            "bundle": zipped(data, extra={"about.md": b"# About\nGenerated phantoms."}),
        })
    assert response.status_code == 302, response.content.decode()[-3000:]
    job = BundleImport.objects.get()
    assert response["Location"] == reverse("organizers:import-status", args=[job.pk])
    assert (job.status, job.progress, job.error) == ("succeeded", 100, "")
    challenge = Challenge.objects.get(slug="uploaded")
    assert job.challenge == challenge and list(challenge.organizers.all()) == [user]
    assert "Generated phantoms" in challenge.description
    phase = challenge.phases.get()
    assert phase.dataset.is_hidden and phase.dataset.cases.count() == 2
    assert AuditEvent.objects.filter(challenge=challenge, action="challenge.import", actor=user).exists()
    status = client.get(reverse("organizers:import-status", args=[job.pk]))
    assert "Imported" in status.content.decode()
    other = UserFactory()
    client.force_login(other)
    assert client.get(reverse("organizers:import-status", args=[job.pk])).status_code == 404
    # the uploader may re-import their own slug; someone else may not
    with django_capture_on_commit_callbacks(execute=True):
        refused = client.post(reverse("organizers:import"), {"bundle": zipped(bundle(title="Taken over"))})
    assert refused.status_code == 400 and "belongs to another challenge" in refused.content.decode()
    assert Challenge.objects.get(slug="uploaded").title == "Uploaded challenge"


HOSTILE = [
    pytest.param(zipped(bundle(organizers=["root"])), "cannot name organizers", id="organizers list"),
    pytest.param(zipped({**bundle(), "datasets": {"train": {"task": "aasce-cobb", "split": "train",
                                                           "path": "other-challenge/test"}}}),
                 "datasets.train.path", id="server path"),
    pytest.param(zipped(bundle(description_file="../../etc/passwd")), "description_file", id="dot-dot description"),
    pytest.param(zipped({**bundle(), "datasets": {"train": {
        "task": "aasce-cobb", "split": "train", "import": {"layout": "aasce", "path": "/var/lib"}}}}),
        "import.path", id="import path"),
    pytest.param(zipped(bundle(), extra={"../escape.txt": b"x"}), "escape", id="zip member escapes"),
    pytest.param(zipped({**bundle(), "datasets": {"train": {"task": "aasce-cobb", "split": "train",
                                                           "generate": {"cases": 100000}}}}),
                 "generates at most", id="too many cases"),
    pytest.param(zipped(None, extra={"readme.txt": b"no yaml"}), "no challenge.yaml", id="no challenge.yaml"),
    pytest.param(SimpleUploadedFile("b.zip", b"PK\x03\x04 not a zip"), "zip", id="not a zip"),
]


@pytest.mark.parametrize(("upload", "message"), HOSTILE)
def test_hostile_bundles_change_nothing(upload, message, eager_tasks, django_capture_on_commit_callbacks):
    ChallengeFactory(slug="someone-elses")
    before = snapshot()
    client = APIClient()
    client.force_authenticate(UserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("challenge-import"), {"bundle": upload}, format="multipart")
    assert response.status_code == 400, response.content
    assert message in response.json()["bundle"][0]
    assert snapshot() == before


def test_someone_elses_slug_through_the_api_changes_nothing(eager_tasks, django_capture_on_commit_callbacks):
    owner_challenge = ChallengeFactory(slug="uploaded", title="Owned")
    before = snapshot()
    client = APIClient()
    client.force_authenticate(UserFactory())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("challenge-import"), {"bundle": zipped(bundle())}, format="multipart")
    assert response.status_code == 400 and "challenge.slug" in response.json()["bundle"][0]
    assert snapshot() == before and Challenge.objects.get(pk=owner_challenge.pk).title == "Owned"


def test_api_import_reports_progress_and_a_failure_in_the_job_leaves_nothing(
    eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    user = UserFactory()
    client = APIClient()
    client.force_authenticate(user)
    before = snapshot()
    from spinebench.challenges.bundles import BundleError
    from spinebench.datasets import bundles

    def broken_phase(*args, **kwargs):
        raise BundleError("challenge.yaml: phases[0].task: simulated failure after the datasets")

    monkeypatch.setattr(bundles, "_import_phase", broken_phase)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("challenge-import"), {"bundle": zipped(bundle())}, format="multipart")
    assert response.status_code == 202, response.content
    job = client.get(reverse("organizer-import-detail", args=[response.json()["id"]])).json()
    assert job["status"] == "failed" and "simulated failure" in job["error"]
    after = snapshot()
    # only the job row, its stored zip and nothing else: no challenge, phase, dataset or dataset folder
    assert (after[0], after[1], after[2], after[5], after[6]) == (before[0], before[1], before[2], before[5], before[6])
    assert APIClient().get(reverse("organizer-import-detail", args=[job["id"]])).status_code == 401


def test_the_manage_page_links_the_import_page_and_a_queued_job_says_so_once(client):
    client.force_login(UserFactory())
    index = client.get(reverse("organizers:index")).content.decode()
    assert f'href="{reverse("organizers:import")}"' in index
    response = client.post(reverse("organizers:import"), {"bundle": zipped(bundle())})  # commit hooks not run: queued
    assert response.status_code == 302
    status = client.get(response["Location"]).content.decode()
    assert "<strong>Waiting for a worker</strong></p>" in status and status.count("waiting for a worker") == 0
