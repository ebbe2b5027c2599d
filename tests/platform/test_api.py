"""REST API: token auth, listing, registration, upload, polling, training download, and permissions for anonymous,
participant, other participant and organizer."""

import io
import zipfile

import pytest
from rest_framework.test import APIClient

from spinebench.accounts.tokens import find_token
from spinebench.challenges.models import Challenge

from .aasce_data import HIDDEN_ANGLES, TRAIN_ANGLES, smape
from .conftest import api, csv_upload
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


@pytest.fixture
def world(db):
    phase = PhaseFactory(show_case_results=False)
    participant = RegistrationFactory(challenge=phase.challenge).user
    other = RegistrationFactory(challenge=phase.challenge).user  # another participant
    outsider = UserFactory()
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    return {"phase": phase, "participant": participant, "other": other, "outsider": outsider, "organizer": organizer}


def test_token_endpoint_and_listing(world):
    user = world["participant"]
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": "correct-horse-battery"})
    assert response.status_code == 200 and find_token(response.json()["token"]).user == user
    challenges = api().get("/api/challenges/").json()
    assert [c["slug"] for c in challenges] == [world["phase"].challenge.slug]
    phases = api().get("/api/phases/", {"challenge": world["phase"].challenge.slug}).json()
    assert phases[0]["primary_metric"] == "smape" and phases[0]["metrics"][0] == {"key": "smape", "direction": "lower"}


def test_register_through_the_api(world):
    challenge = world["phase"].challenge
    assert api().post(f"/api/challenges/{challenge.slug}/register/").status_code == 401
    response = api(world["outsider"]).post(f"/api/challenges/{challenge.slug}/register/")
    assert response.status_code == 201 and response.json()["status"] == "approved"
    challenge.registration_mode = Challenge.RegistrationMode.APPROVAL
    challenge.save()
    newcomer = UserFactory()
    assert api(newcomer).post(f"/api/challenges/{challenge.slug}/register/").json()["status"] == "pending"


def test_submission_permissions_and_polling(world, eager_tasks, django_capture_on_commit_callbacks):
    phase = world["phase"]
    url = f"/api/phases/{phase.pk}/submissions/"
    assert api().post(url, {"file": csv_upload(GOOD)}, format="multipart").status_code == 401
    refused = api(world["outsider"]).post(url, {"file": csv_upload(GOOD)}, format="multipart")
    assert refused.status_code == 403 and "register" in refused.json()["detail"]
    with django_capture_on_commit_callbacks(execute=True):
        created = api(world["participant"]).post(url, {"file": csv_upload(GOOD), "comment": "c1"}, format="multipart")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]

    mine = api(world["participant"]).get(f"/api/submissions/{pk}/").json()
    assert mine["status"] == "succeeded" and mine["rank"] == 1
    assert mine["aggregates"]["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD))
    assert mine["case_metrics"] is None  # the phase hides per-case results from participants
    organizer_view = api(world["organizer"]).get(f"/api/submissions/{pk}/").json()
    assert set(organizer_view["case_metrics"]) == set(HIDDEN_ANGLES)
    public_view = api().get(f"/api/submissions/{pk}/").json()  # on the public leaderboard: visible, details private
    assert public_view["status"] == "succeeded" and public_view["case_metrics"] is None
    assert [row["submission"] for row in api().get(f"/api/phases/{phase.pk}/leaderboard/").json()["rows"]] == [pk]
    assert api(world["other"]).get("/api/submissions/").json() == []
    assert [s["id"] for s in api(world["participant"]).get("/api/submissions/").json()] == [pk]


def test_failed_submission_is_private(world, eager_tasks, django_capture_on_commit_callbacks):
    url = f"/api/phases/{world['phase'].pk}/submissions/"
    with django_capture_on_commit_callbacks(execute=True):
        created = api(world["participant"]).post(url, {"file": csv_upload(content=b"case_id,pt\n")}, format="multipart")
    pk = created.json()["id"]
    mine = api(world["participant"]).get(f"/api/submissions/{pk}/").json()
    assert mine["status"] == "failed" and "missing column(s) mt, tl" in mine["error_message"]
    assert api(world["other"]).get(f"/api/submissions/{pk}/").status_code == 404
    assert api().get(f"/api/submissions/{pk}/").status_code == 404
    assert api(world["organizer"]).get(f"/api/submissions/{pk}/").json()["error_message"] == mine["error_message"]


def test_limit_refusal_is_429(world, eager_tasks, django_capture_on_commit_callbacks):
    phase = world["phase"]
    phase.submission_limit = 1
    phase.save()
    url = f"/api/phases/{phase.pk}/submissions/"
    with django_capture_on_commit_callbacks(execute=True):
        assert api(world["participant"]).post(url, {"file": csv_upload(GOOD)}, format="multipart").status_code == 201
    response = api(world["participant"]).post(url, {"file": csv_upload(GOOD)}, format="multipart")
    assert response.status_code == 429 and response.json()["code"] == "limit"


def test_training_download_with_labels_and_test_never(world):
    phase = world["phase"]
    train_url = f"/api/datasets/{phase.training_dataset_id}/download/"
    test_url = f"/api/datasets/{phase.dataset_id}/download/"
    assert api().get(train_url).status_code == 401
    assert api(world["outsider"]).get(train_url).status_code == 403
    for user in (world["participant"], world["organizer"]):
        response = api(user).get(train_url)
        assert response.status_code == 200 and response["Content-Type"] == "application/zip"
        archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        slug = phase.training_dataset.slug
        assert f"{slug}/ground_truth/angles.csv" in archive.namelist()
        labels = archive.read(f"{slug}/ground_truth/angles.csv").decode()
        assert all(case in labels for case in TRAIN_ANGLES)
        assert api(user).get(test_url).status_code == 404
    page = APIClient()
    page.force_login(world["participant"])
    assert page.get(f"/datasets/{phase.dataset_id}/download/").status_code == 404
    assert page.get(f"/datasets/{phase.training_dataset_id}/download/").status_code == 200


def test_hidden_phase_is_invisible_to_participants(world):
    phase = world["phase"]
    phase.is_public = False
    phase.save()
    assert api(world["participant"]).get(f"/api/phases/{phase.pk}/").status_code == 404
    assert api(world["organizer"]).get(f"/api/phases/{phase.pk}/").status_code == 200
    response = api(world["participant"]).post(
        f"/api/phases/{phase.pk}/submissions/", {"file": csv_upload(GOOD)}, format="multipart"
    )
    assert response.status_code == 404


def test_schema_and_docs():
    client = APIClient()
    schema = client.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/phases/{id}/submissions/" in schema.content
    assert client.get("/api/docs/").status_code == 200
