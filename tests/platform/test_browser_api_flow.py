"""The flow of the platform issue walked through the REST API as a participant would with curl: a token, joining
the challenge, the inputs of the test cases (there was no way to get them: a CSV for a hidden test set could not be
made), an upload, polling, and the rank in the leaderboard JSON; and the API docs page working offline."""

from __future__ import annotations

import io
import re
import zipfile

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"  # tests/platform/factories.UserFactory


def token_client(user) -> APIClient:
    anonymous = APIClient()
    response = anonymous.post("/api/auth/token/", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 200
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def zip_members(response) -> dict[str, bytes]:
    body = b"".join(response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_participant_gets_inputs_uploads_polls_and_is_ranked(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory()
    user = UserFactory()
    api = token_client(user)
    challenge = phase.challenge.slug

    assert api.get(f"/api/phases/{phase.pk}/inputs/").status_code == 403  # not registered yet
    assert api.post(f"/api/challenges/{challenge}/register/").status_code == 201

    response = api.get(f"/api/phases/{phase.pk}/inputs/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    members = zip_members(response)
    top = f"{challenge}-{phase.dataset.slug}-inputs"
    assert members[f"{top}/cases.csv"].decode().split() == ["case_id", *HIDDEN_ANGLES]
    assert {f"{top}/inputs/{case}/image.png" for case in HIDDEN_ANGLES} <= set(members)
    assert not [name for name in members if "ground_truth" in name or name.endswith("dataset.json")]

    # Predictions for exactly the listed cases, then poll and find the rank on the leaderboard.
    case_ids = members[f"{top}/cases.csv"].decode().split()[1:]
    angles = {case: (20.0, 20.0, 10.0) for case in case_ids}
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post(
            f"/api/phases/{phase.pk}/submissions/",
            {"file": SimpleUploadedFile("predictions.csv", predictions_csv(angles)), "comment": "via curl"},
            format="multipart",
        )
    assert created.status_code == 201
    polled = api.get(f"/api/submissions/{created.json()['id']}/").json()
    assert polled["status"] == "succeeded" and polled["rank"] == 1, polled["error_message"]
    board = APIClient().get(reverse("leaderboards:export-json", args=[challenge, phase.slug])).json()
    assert [(row["rank"], row["participant"], row["submission"]) for row in board["rows"]] == [
        (1, user.username, created.json()["id"])
    ]


def test_inputs_download_is_refused_to_outsiders_and_for_algorithm_phases(client):
    phase = PhaseFactory()
    member = RegistrationFactory(challenge=phase.challenge).user
    assert APIClient().get(f"/api/phases/{phase.pk}/inputs/").status_code == 401
    assert token_client(UserFactory()).get(f"/api/phases/{phase.pk}/inputs/").status_code == 403
    page_url = reverse("leaderboards:inputs", args=[phase.challenge.slug, phase.slug])
    client.force_login(UserFactory())
    assert client.get(page_url).status_code == 404
    assert 'id="inputs"' not in client.get(phase.get_absolute_url()).content.decode()
    client.force_login(member)
    assert 'id="inputs"' in client.get(phase.get_absolute_url()).content.decode()
    assert client.get(page_url).status_code == 200

    phase.submission_kind = "algorithm"  # the container sandbox keeps these inputs
    phase.save()
    assert token_client(member).get(f"/api/phases/{phase.pk}/inputs/").status_code == 404
    assert client.get(page_url).status_code == 404


def test_api_docs_page_loads_swagger_ui_from_our_static_files(client):
    """It came from a CDN (`@latest`), so the docs page was blank offline; now every asset is served here."""
    page = client.get("/api/docs/").content.decode()
    assets = [asset for asset in re.findall(r'(?:src|href)="([^"]+)"', page) if not asset.startswith("/api/")]
    assert assets and all(asset.startswith(settings.STATIC_URL) for asset in assets), assets
    bundle = next(asset for asset in assets if asset.endswith("swagger-ui-bundle.js"))
    from django.contrib.staticfiles import finders

    assert finders.find(bundle.removeprefix(settings.STATIC_URL))
