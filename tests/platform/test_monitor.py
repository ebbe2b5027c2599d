"""Organizers' scoring control through the API and the pages: THE cancel endpoint (submitter and organizers, with a
reason, idempotent, refused for a finished submission), the submission monitor's filters, hiding a submission from
the leaderboard with a reason the submitter sees, restoring it, re-running an upload, and re-scoring a phase from
its page (progress fragment) and the API."""

import pytest
from rest_framework.test import APIClient

from spinebench.evaluation.models import RescoreJob
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.models import Submission
from spinebench.submissions.quota import submission_quota
from spinebench.submissions.services import create_submission
from spinebench.submissions.tasks import score_submission

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import api, csv_upload
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
CLOSE = {"case_a": (31.0, 27.0, 14.0), "case_b": (17.0, 22.0, 12.0), "case_c": (24.0, 19.0, 11.0)}


@pytest.fixture
def people(phase, participant, organizer):
    return {"participant": participant, "other": RegistrationFactory(challenge=phase.challenge).user,
            "organizer": organizer, "outsider": UserFactory()}


def _queued(phase, user) -> Submission:
    """Accepted and queued: its scoring task is dispatched at commit, which these tests never reach."""
    submission = create_submission(phase=phase, user=user, upload=csv_upload(GOOD))
    assert submission.status == "queued"
    return submission


def _scored(phase, user, angles, capture) -> Submission:
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=csv_upload(angles))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


# The one cancel endpoint --------------------------------------------------------------------------------------------

def test_the_submitter_cancels_with_a_reason_once(phase, people):
    submission = _queued(phase, people["participant"])
    url = f"/api/submissions/{submission.pk}/cancel/"
    assert api(people["other"]).post(url).status_code == 404  # not theirs, and not on any leaderboard
    response = api(people["participant"]).post(url, {"reason": "wrong file"})
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["error_message"] == "Cancelled: wrong file"
    again = api(people["participant"]).post(url, {"reason": "another reason"})
    assert again.status_code == 200 and again.json()["error_message"] == "Cancelled: wrong file"
    # The scoring task that was queued finds it cancelled and does nothing.
    assert score_submission(submission_pk=submission.pk) == "nothing to do: cancelled"
    assert not AuditEvent.objects.exists()  # the submitter's own cancel is no organizer action


def test_an_organizer_cancels_and_it_is_audited(phase, people):
    submission = _queued(phase, people["participant"])
    response = api(people["organizer"]).post(f"/api/submissions/{submission.pk}/cancel/", {"reason": "duplicate"})
    assert response.status_code == 200
    submission.refresh_from_db()
    assert (submission.status, submission.error_message) == ("cancelled", "Cancelled by an organizer: duplicate")
    event = AuditEvent.objects.get()
    assert (event.action, event.actor, event.note) == ("submission.cancel", people["organizer"], "duplicate")
    assert event.changes == {"status": ["queued", "cancelled"]}


def test_a_finished_submission_cannot_be_cancelled(phase, people, eager_tasks, django_capture_on_commit_callbacks):
    submission = _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    response = api(people["participant"]).post(f"/api/submissions/{submission.pk}/cancel/")
    assert response.status_code == 409 and "already succeeded" in response.json()["detail"]
    # Seen on the leaderboard, but another participant may not cancel it.
    assert api(people["other"]).post(f"/api/submissions/{submission.pk}/cancel/").status_code == 403
    submission.refresh_from_db()
    assert submission.status == "succeeded"


def test_a_too_long_reason_is_a_field_error(phase, people):
    submission = _queued(phase, people["participant"])
    response = api(people["participant"]).post(f"/api/submissions/{submission.pk}/cancel/", {"reason": "x" * 501})
    assert response.status_code == 400 and "reason" in response.json()
    submission.refresh_from_db()
    assert submission.status == "queued"


# Hide, restore, re-run ----------------------------------------------------------------------------------------------

def test_hide_and_restore_move_the_submission_off_and_back_on_the_leaderboard(
    phase, people, eager_tasks, django_capture_on_commit_callbacks
):
    hidden = _scored(phase, people["participant"], CLOSE, django_capture_on_commit_callbacks)
    other = _scored(phase, people["other"], GOOD, django_capture_on_commit_callbacks)
    url = f"/api/monitor/submissions/{hidden.pk}/"

    missing = api(people["organizer"]).post(url + "hide/", {"reason": "  "})
    assert missing.status_code == 400 and "reason" in missing.json()
    assert api(people["participant"]).post(url + "hide/", {"reason": "x"}).status_code == 404

    response = api(people["organizer"]).post(url + "hide/", {"reason": "same predictions as team B"})
    assert response.status_code == 200 and response.json()["hidden_from_leaderboard"] is True
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert [row["submission"] for row in snapshot.rows] == [other.pk]
    # The submitter reads the reason (API and page); nobody else sees the submission any more.
    own = api(people["participant"]).get(f"/api/submissions/{hidden.pk}/").json()
    assert own["hidden_reason"] == "same predictions as team B" and own["rank"] is None
    assert api(people["other"]).get(f"/api/submissions/{hidden.pk}/").status_code == 404
    client = APIClient()
    client.force_login(people["participant"])
    assert "same predictions as team B" in client.get(f"/submissions/{hidden.pk}/").content.decode()

    assert api(people["organizer"]).post(url + "restore/").status_code == 200
    snapshot = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    assert [row["submission"] for row in snapshot.rows] == [hidden.pk, other.pk]
    assert api(people["participant"]).get(f"/api/submissions/{hidden.pk}/").json()["hidden_reason"] == ""
    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "target"))
    target = f"submission {hidden.pk}"
    assert actions == [("submission.hide", target), ("submission.restore", target)]


def test_rerun_scores_the_same_upload_again_without_costing_the_participant(
    phase, people, eager_tasks, django_capture_on_commit_callbacks
):
    original = _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    used = submission_quota(phase=phase, user=people["participant"]).used
    with django_capture_on_commit_callbacks(execute=True):
        response = api(people["organizer"]).post(f"/api/monitor/submissions/{original.pk}/rerun/")
    assert response.status_code == 201
    rerun = Submission.objects.get(pk=response.json()["id"])
    assert (rerun.rerun_of, rerun.creator, rerun.status) == (original, people["participant"], "succeeded")
    assert rerun.evaluation.aggregates["smape"] == pytest.approx(smape(HIDDEN_ANGLES, GOOD), abs=1e-9)
    assert rerun.predictions_file.name != original.predictions_file.name
    assert submission_quota(phase=phase, user=people["participant"]).used == used
    assert AuditEvent.objects.get().action == "submission.rerun"


def test_an_active_submission_is_not_rerun(phase, people):
    submission = _queued(phase, people["participant"])
    response = api(people["organizer"]).post(f"/api/monitor/submissions/{submission.pk}/rerun/")
    assert response.status_code == 400 and "still queued" in response.json()["submission"][0]
    assert Submission.objects.count() == 1


# The monitor's filters ----------------------------------------------------------------------------------------------

def test_monitor_filters(phase, people, eager_tasks, django_capture_on_commit_callbacks):
    hidden_phase = PhaseFactory(challenge=phase.challenge, is_public=False)
    scored = _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    queued = _queued(phase, people["other"])
    on_hidden = _queued(hidden_phase, people["organizer"])
    slug = phase.challenge.slug

    def ids(**query):
        response = api(people["organizer"]).get("/api/monitor/submissions/", {"challenge": slug, **query})
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()]

    assert ids() == [on_hidden.pk, queued.pk, scored.pk]
    assert ids(phase=hidden_phase.slug) == [on_hidden.pk]
    assert ids(status="succeeded") == [scored.pk]
    assert ids(participant=people["other"].username) == [queued.pk]
    assert ids(baseline="yes") == []
    assert ids(baseline="no", since=scored.created.date().isoformat()) == [on_hidden.pk, queued.pk, scored.pk]
    assert ids(until="2000-01-01") == []

    def error(**query):
        response = api(people["organizer"]).get("/api/monitor/submissions/", {"challenge": slug, **query})
        assert response.status_code == 400
        return response.json()

    assert "since" in error(since="yesterday")
    assert "until" in error(since="2030-01-02", until="2030-01-01")
    assert "phase" in error(phase="no-such-phase")
    assert "status" in error(status="finished")
    assert api(people["participant"]).get("/api/monitor/submissions/", {"challenge": slug}).status_code == 404
    detail = api(people["organizer"]).get(f"/api/monitor/submissions/{scored.pk}/").json()
    assert detail["evaluation"]["version"] == 1 and detail["history"] == [] and detail["logs"] == []


def test_monitor_pages(phase, people, eager_tasks, django_capture_on_commit_callbacks):
    scored = _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    client = APIClient()
    client.force_login(people["organizer"])
    base = f"/organizers/{phase.challenge.slug}/submissions/"
    page = client.get(base, {"status": "succeeded"}).content.decode()
    assert f'href="{base}{scored.pk}/"' in page
    assert "No submission matches" in client.get(base, {"status": "failed"}).content.decode()
    assert "The last day comes before the first one" in client.get(
        base, {"since": "2030-01-02", "until": "2030-01-01"}).content.decode()
    response = client.post(f"{base}{scored.pk}/hide/", {"reason": "late entry"})
    assert response.status_code == 302 and response["Location"] == f"{base}{scored.pk}/"
    detail = client.get(f"{base}{scored.pk}/").content.decode()
    assert "Hidden from the leaderboard: late entry" in detail and 'id="restore"' in detail
    client.force_login(people["other"])
    assert client.get(base).status_code == 404


# Re-scoring from the page and the API --------------------------------------------------------------------------------

def test_rescore_from_the_api(phase, people, eager_tasks, django_capture_on_commit_callbacks):
    _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    refused = api(people["participant"]).post("/api/rescore-jobs/", {"phase": phase.pk})
    assert refused.status_code == 400 and "phase" in refused.json()
    with django_capture_on_commit_callbacks(execute=True):
        response = api(people["organizer"]).post("/api/rescore-jobs/", {"phase": phase.pk, "note": "evaluator fix"})
    assert response.status_code == 201, response.json()
    job = api(people["organizer"]).get(f"/api/rescore-jobs/{response.json()['id']}/").json()
    assert (job["status"], job["scored"], job["total"], job["to_version"]) == ("succeeded", 1, 1, 2)
    assert job["requested_by"] == people["organizer"].username
    listed = api(people["organizer"]).get("/api/rescore-jobs/", {"phase": phase.pk}).json()
    assert [item["id"] for item in listed] == [job["id"]]
    assert api(people["organizer"]).get("/api/rescore-jobs/", {"phase": "x"}).status_code == 400
    assert api(people["participant"]).get("/api/rescore-jobs/").json() == []


def test_rescore_page_and_its_progress_fragment(phase, people, eager_tasks, django_capture_on_commit_callbacks):
    _scored(phase, people["participant"], GOOD, django_capture_on_commit_callbacks)
    client = APIClient()
    client.force_login(people["organizer"])
    url = f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/rescore/"
    assert 'id="evaluation-version">1<' in client.get(url).content.decode()
    response = client.post(url, {"note": "labels fixed"})  # commit callbacks not run: the job stays queued
    assert response.status_code == 302
    job = RescoreJob.objects.get()
    fragment = client.get(f"/organizers/rescore-jobs/{job.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in fragment and "0 of 1" in fragment
    again = client.post(url, {"note": "twice"}).content.decode()
    assert f"Re-score job {job.pk} of this phase is still queued" in again
    from spinebench.evaluation.tasks import rescore_phase

    assert rescore_phase(job_pk=job.pk) == "switched"
    fragment = client.get(f"/organizers/rescore-jobs/{job.pk}/").content.decode()
    assert "hx-trigger" not in fragment and "1 of 1" in fragment and "succeeded" in fragment
    assert 'id="evaluation-version">2<' in client.get(url).content.decode()
