"""Regressions for what the permission matrix and the schemathesis run found (issue #16): each request below gave a
500 or an answer the schema did not describe before the fix."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from spinebench.accounts.tokens import issue_token
from tests.platform.factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def participant_api():
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user=user, name='regression').secret}")
    return client, phase


@pytest.mark.parametrize("suffix", ["leaderboard.json", "inputs.json"])
def test_phase_actions_answer_their_format_suffix(participant_api, suffix):
    """`.json` variants of the router's action routes raised TypeError (unexpected keyword argument 'format')."""
    client, phase = participant_api
    assert client.get(f"/api/phases/{phase.pk}/{suffix}").status_code == 200


def test_register_and_download_answer_their_format_suffix(participant_api):
    client, phase = participant_api
    assert client.post(f"/api/challenges/{phase.challenge.slug}/register.json").status_code == 201
    assert client.get(f"/api/datasets/{phase.training_dataset_id}/download.json").status_code == 200


@pytest.mark.parametrize("path", ["/api/phases/abc/", "/api/submissions/£x/", "/api/phases/1e3/leaderboard/",
                                  "/api/datasets/x/download/", "/api/phases/x/inputs/"])
def test_malformed_ids_are_404_not_500(participant_api, path):
    client, _ = participant_api
    response = client.get(path)
    assert response.status_code == 404 and response["Content-Type"] == "application/json"


def test_unrouted_api_paths_answer_json():
    response = APIClient().get("/api/challenges/a.b.c/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    page = APIClient().get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_schema_describes_what_the_api_answers():
    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    register = paths["/api/challenges/{slug}/register/"]["post"]["responses"]
    assert "201" in register and "200" not in register
    assert set(register) >= {"401", "403", "404", "429"}
    leaderboard = paths["/api/phases/{id}/leaderboard/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert leaderboard["schema"]["$ref"].endswith("/Leaderboard")
    upload = paths["/api/phases/{id}/submissions/"]["post"]["requestBody"]["content"]
    # multipart for a file; JSON for the id of a finished chunked upload (`upload`), never urlencoded
    assert list(upload) == ["multipart/form-data", "application/json"]
    assert paths["/api/auth/token/"]["post"]["responses"].keys() >= {"200", "400", "429"}
    assert "401" not in paths["/api/auth/token/"]["post"]["responses"]  # no authentication there at all
    assert [p["name"] for p in paths["/api/phases/"]["get"]["parameters"]] == ["challenge"]


def test_upload_field_is_documented_as_a_file():
    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    assert schemas["SubmissionCreate"]["properties"]["file"] == {"type": "string", "format": "binary"}
