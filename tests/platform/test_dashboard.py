"""The participant's dashboard (issue 13 item 2): my challenges (team, position, quota) and my submissions (status
live, position from the latest leaderboard snapshot, score, remaining submissions with teams, logs and re-submit
links), the same facts through GET /api/my-submissions/, and scores withheld wherever `scores_visible` says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from spinebench.accounts.email_links import mark_verified
from spinebench.accounts.tokens import issue_token
from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.submissions.models import Submission
from spinebench.submissions.quota import submission_quota
from spinebench.submissions.services import create_submission
from spinebench.submissions.status import Status, transition
from spinebench.teams import services as teams

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory

pytestmark = pytest.mark.django_db
NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
FAR = {case: (a + 9.0, b + 9.0, c + 9.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}


def scored(phase, user, angles, capture):
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=csv_upload(angles))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    return submission


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_dashboard_shows_challenges_and_submissions_with_position_score_and_team_quota(
    phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    phase.submission_limit = 4
    phase.save()
    mark_verified(user=participant, email=participant.email)
    mate = RegistrationFactory(challenge=phase.challenge).user
    mark_verified(user=mate, email=mate.email)
    team = teams.create_team(challenge=phase.challenge, user=participant, name="Spine Squad")
    teams.accept(invitation=teams.invite(team=team, by=participant, who=mate.username))
    rival = RegistrationFactory(challenge=phase.challenge).user
    scored(phase, rival, NEAR, django_capture_on_commit_callbacks)
    mine = scored(phase, participant, FAR, django_capture_on_commit_callbacks)
    scored(phase, mate, FAR, django_capture_on_commit_callbacks)  # the team's entry stays the earlier equal one

    page = signed_in(participant).get("/dashboard/").content.decode()
    assert "My challenges" in page and phase.challenge.title in page and "Spine Squad" in page
    row = page.split(f'id="submission-{mine.pk}"')[1].split("</tr>")[0]
    assert "succeeded" in row and f'id="position-{mine.pk}">2<' in row
    assert f"{smape(HIDDEN_ANGLES, FAR):.3f}" in row
    assert "2 of 4 left (per 24 h)" in row  # the team's quota: two of its submissions count
    assert "Re-submit" in row and "Logs" not in row  # a CSV phase has no container logs
    assert "hx-trigger" not in page  # every submission is final: no polling
    # the mate's submission is not on the participant's list (their own submissions only)
    assert page.count('id="submission-') == 1


def test_position_is_read_from_the_latest_snapshot(phase, participant, eager_tasks, django_capture_on_commit_callbacks):
    mine = scored(phase, participant, NEAR, django_capture_on_commit_callbacks)
    latest = LeaderboardSnapshot.objects.filter(phase=phase).latest()
    rows = [dict(row, rank=7) for row in latest.rows]  # a later snapshot (as a re-score would write) says 7
    LeaderboardSnapshot.objects.create(phase=phase, ranking_method=latest.ranking_method, metrics=latest.metrics,
                                       rows=rows, statistics_status="ready")
    [item] = signed_in(participant).get("/api/my-submissions/").json()
    assert item["id"] == mine.pk and item["position"] == 7
    page = signed_in(participant).get("/dashboard/").content.decode()
    assert f'id="position-{mine.pk}">7<' in page
    assert "<td class=\"num\">7</td>" in page  # my challenges: the entry's position


def test_status_updates_live_until_every_submission_is_final(phase, participant):
    submission = create_submission(phase=phase, user=participant, upload=csv_upload(NEAR))  # not dispatched: queued
    client = signed_in(participant)
    page = client.get("/dashboard/").content.decode()
    assert 'hx-get="/dashboard/?fragment=submissions"' in page and 'hx-trigger="every 3s"' in page
    fragment = client.get("/dashboard/?fragment=submissions").content.decode()
    assert fragment.startswith('<div id="my-submissions"') and "<html" not in fragment
    assert f'id="status-{submission.pk}"' in fragment and "queued" in fragment
    assert "hx-trigger" in fragment

    transition(submission, Status.FAILED, error="worker lost")
    fragment = client.get("/dashboard/?fragment=submissions").content.decode()
    assert "failed" in fragment and "hx-trigger" not in fragment  # final: the table stops polling itself


def test_api_lists_my_submissions_with_the_same_facts(
    phase, participant, other_user, eager_tasks, django_capture_on_commit_callbacks
):
    mine = scored(phase, participant, NEAR, django_capture_on_commit_callbacks)
    queued = create_submission(phase=phase, user=participant, upload=csv_upload(FAR))
    token = issue_token(user=participant, name="t").secret
    client = Client(headers={"Authorization": f"Token {token}"})
    listed = client.get("/api/my-submissions/").json()
    assert [item["id"] for item in listed] == [queued.pk, mine.pk]
    done = listed[1]
    quota = submission_quota(phase=phase, user=participant)
    assert done["status"] == "succeeded" and done["is_final"] and done["position"] == 1
    assert done["score"] == pytest.approx(smape(HIDDEN_ANGLES, NEAR))
    assert done["quota"]["used"] == quota.used == 2 and done["quota"]["remaining"] == quota.remaining
    assert done["resubmit_url"] == reverse("submissions:create", args=[phase.challenge.slug, phase.slug])
    assert done["logs_url"] is None and done["team"] is None and done["scores_shown"] is True
    assert [item["id"] for item in client.get("/api/my-submissions/?active=1").json()] == [queued.pk]
    other = Client(headers={"Authorization": f"Token {issue_token(user=other_user, name='t').secret}"})
    assert other.get("/api/my-submissions/").json() == []
    assert Client().get("/api/my-submissions/").status_code == 401


def test_scores_and_positions_withheld_where_scores_visible_refuses(
    phase, participant, monkeypatch, eager_tasks, django_capture_on_commit_callbacks
):
    mine = scored(phase, participant, NEAR, django_capture_on_commit_callbacks)
    monkeypatch.setattr("spinebench.leaderboards.dashboard_views.scores_visible", lambda phase, user: False)
    monkeypatch.setattr("spinebench.leaderboards.dashboard_api.scores_visible", lambda phase, user: False)
    [item] = signed_in(participant).get("/api/my-submissions/").json()
    assert item["status"] == "succeeded" and item["scores_shown"] is False
    assert item["position"] is None and item["score"] is None
    page = signed_in(participant).get("/dashboard/").content.decode()
    row = page.split(f'id="submission-{mine.pk}"')[1].split("</tr>")[0]
    assert "withheld" in row and f"{smape(HIDDEN_ANGLES, NEAR):.3f}" not in page


def test_logs_link_on_algorithm_phases_and_no_resubmit_once_closed(db):
    phase = PhaseFactory(submission_kind="algorithm", closes_at=timezone.now() - timedelta(hours=1))
    user = RegistrationFactory(challenge=phase.challenge).user
    submission = Submission.objects.create(phase=phase, creator=user)
    [item] = signed_in(user).get("/api/my-submissions/").json()
    assert item["logs_url"] == f"/algorithms/submissions/{submission.pk}/" and item["resubmit_url"] is None
    assert item["is_final"] is False


def test_dashboard_is_linked_from_the_user_menu_and_needs_a_login(participant):
    assert 'href="/dashboard/"' in signed_in(participant).get("/challenges/").content.decode()
    response = Client().get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_dashboard_cancels_one_own_unfinished_submission_through_the_one_cancel_service(phase, participant):
    """The dashboard offers Cancel for the user's own submission while it is not final (not for a team mate's, not
    for a final one); pressing it cancels through the same service as the API, and the row then shows it final."""
    mark_verified(user=participant, email=participant.email)
    mate = RegistrationFactory(challenge=phase.challenge).user
    mark_verified(user=mate, email=mate.email)
    team = teams.create_team(challenge=phase.challenge, user=participant, name="Cancellers")
    teams.accept(invitation=teams.invite(team=team, by=participant, who=mate.username))
    waiting = Submission.objects.create(phase=phase, creator=participant, team=team, status=Status.QUEUED)
    mates = Submission.objects.create(phase=phase, creator=mate, team=team, status=Status.QUEUED)
    cancel_url = reverse("submissions:cancel", kwargs={"pk": waiting.pk})
    client = signed_in(participant)
    page = client.get(reverse("dashboard:home")).content.decode()
    assert f'action="{cancel_url}"' in page
    assert reverse("submissions:cancel", kwargs={"pk": mates.pk}) not in page  # a team mate's: theirs to cancel
    client.post(cancel_url, {"reason": "wrong file"})
    waiting.refresh_from_db()
    assert waiting.status == Status.CANCELLED
    page = client.get(reverse("dashboard:home")).content.decode()
    assert f'action="{cancel_url}"' not in page
