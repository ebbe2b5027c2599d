"""M4: the submitter's comment is private. The submission page hid it, but GET /api/submissions/<id>/ returned it to
anyone who could see the submission (a ranked one: everyone, anonymously too). Only the submitter and the
challenge's organizers may read it, with the error message and hidden per-case results."""

import pytest
from rest_framework.test import APIClient

from spinebench.accounts.tokens import issue_token

from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTE = "private note: tried the 2nd checkpoint, ask Ana about the L4 labels"
GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user=user, name='privacy test').secret}")
    return client


@pytest.fixture
def ranked_submission(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(show_case_results=False)
    submitter = RegistrationFactory(challenge=phase.challenge).user
    other_participant = RegistrationFactory(challenge=phase.challenge).user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        created = api(submitter).post(
            f"/api/phases/{phase.pk}/submissions/", {"file": csv_upload(GOOD), "comment": NOTE}, format="multipart"
        )
    assert created.status_code == 201, created.content
    return {"pk": created.json()["id"], "submitter": submitter, "other": other_participant, "organizer": organizer}


@pytest.mark.parametrize("who", ["anonymous", "other", "outsider"])
def test_others_see_the_ranked_submission_but_not_its_comment(ranked_submission, who):
    user = {"anonymous": None, "outsider": UserFactory()}.get(who, ranked_submission.get(who))
    response = api(user).get(f"/api/submissions/{ranked_submission['pk']}/")
    assert response.status_code == 200  # ranked on a public leaderboard: the submission itself is public
    body = response.json()
    assert body["rank"] == 1 and body["status"] == "succeeded"
    assert body["comment"] == "" and NOTE not in response.content.decode()
    assert body["case_metrics"] is None and body["error_message"] == ""


@pytest.mark.parametrize("who", ["submitter", "organizer"])
def test_submitter_and_organizers_read_the_comment(ranked_submission, who):
    body = api(ranked_submission[who]).get(f"/api/submissions/{ranked_submission['pk']}/").json()
    assert body["comment"] == NOTE


def test_the_submitters_own_list_keeps_the_comment(ranked_submission):
    mine = api(ranked_submission["submitter"]).get("/api/submissions/").json()
    assert [row["comment"] for row in mine] == [NOTE]
