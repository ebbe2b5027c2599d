"""The public pages with Django's test client: a new user's whole path, safe markdown, organizer approval, and the
hidden test ground truth absent from every page and export of a test phase."""

import re

import pytest
from django.urls import reverse

from spinebench.challenges.models import Challenge, Registration
from spinebench.datasets.services import link_phase_datasets
from spinebench.submissions.models import Submission

from .aasce_data import HIDDEN_ANGLES, predictions_csv
from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory, aasce_dataset

pytestmark = pytest.mark.django_db

GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}


def test_new_user_registers_joins_uploads_and_sees_the_rank(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(challenge=ChallengeFactory(slug="aasce-2019", title="AASCE 2019"))
    rival = RegistrationFactory(challenge=phase.challenge).user
    worse = {case: (a + 9, b + 9, c + 9) for case, (a, b, c) in GOOD.items()}
    client.force_login(rival)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=["aasce-2019", phase.slug]), {"file": csv_upload(worse)})
    client.logout()

    response = client.post(
        reverse("signup"),
        {
            "username": "newcomer",
            "email": "newcomer@example.org",
            "password1": "a-Long-pass-9",
            "password2": "a-Long-pass-9",
        },
    )
    assert response.status_code == 302
    page = client.get(reverse("challenges:detail", args=["aasce-2019"])).content.decode()
    assert "Join AASCE 2019" in page
    client.post(reverse("challenges:register", args=["aasce-2019"]))
    assert Registration.objects.get(user__username="newcomer").status == "approved"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("submissions:create", args=["aasce-2019", phase.slug]),
            {"file": csv_upload(GOOD), "comment": "first try"},
        )
    submission = Submission.objects.get(creator__username="newcomer")
    assert response.status_code == 302 and response["Location"] == submission.get_absolute_url()
    detail = client.get(submission.get_absolute_url()).content.decode()
    assert 'id="status">succeeded' in detail and 'id="rank">1<' in detail

    client.logout()  # the leaderboard is public
    board = client.get(phase.get_absolute_url()).content.decode()
    rows = re.findall(r"<tr><td>(\d+)</td><td><a [^>]*>([^<]+)</a>", board)
    assert rows == [("1", "newcomer"), ("2", rival.username)]


def test_markdown_is_rendered_without_raw_html(client):
    ChallengeFactory(slug="md", description="# Title\n\n<script>alert(1)</script> **bold** [x](javascript:alert(2))")
    page = client.get(reverse("challenges:detail", args=["md"])).content.decode()
    assert "<h1>Title</h1>" in page and "<strong>bold</strong>" in page
    assert "<script>alert" not in page and "javascript:" not in page


def test_hidden_challenge_and_phase_are_404_for_the_public(client):
    hidden = PhaseFactory(is_public=False)
    secret = ChallengeFactory(slug="secret", is_public=False)
    assert client.get(hidden.get_absolute_url()).status_code == 404
    assert client.get(reverse("challenges:detail", args=["secret"])).status_code == 404
    organizer = UserFactory()
    secret.organizers.add(organizer)
    client.force_login(organizer)
    assert client.get(reverse("challenges:detail", args=["secret"])).status_code == 200


def test_approval_mode(client):
    challenge = ChallengeFactory(registration_mode=Challenge.RegistrationMode.APPROVAL)
    user, organizer = UserFactory(), UserFactory()
    challenge.organizers.add(organizer)
    client.force_login(user)
    client.post(reverse("challenges:register", args=[challenge.slug]))
    registration = Registration.objects.get(user=user)
    assert registration.status == "pending" and not challenge.is_participant(user)
    client.force_login(organizer)
    client.post(reverse("challenges:registration-decide", args=[challenge.slug, registration.pk, "approve"]))
    assert challenge.is_participant(user)


def test_exports(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(GOOD)})
    csv_text = client.get(reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug])).content.decode()
    header, row = csv_text.strip().splitlines()
    assert header == (
        "rank,participant,is_baseline,submission,created,method_name,paper_url,code_url,smape,mae_pt,mae_mt,mae_tl,"
        "ci_low,ci_high,team"
    )
    assert row.startswith(f"1,{user.username},False,")
    data = client.get(reverse("leaderboards:export-json", args=[phase.challenge.slug, phase.slug])).json()
    assert data["rows"][0]["rank"] == 1 and data["metrics"][0] == {
        "key": "smape",
        "title": "SMAPE of the three Cobb angles (%)",
        "direction": "lower",
    }


def hidden_strings():
    """Every hidden angle as it could be printed (full text, and rounded to the leaderboard's 3 places)."""
    values = [value for angles in HIDDEN_ANGLES.values() for value in angles]
    return (
        {str(value) for value in values} | {f"{value:.3f}" for value in values} | {f"{value:.2f}" for value in values}
    )


def test_hidden_ground_truth_is_absent_from_every_page_and_api_response(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    phase = PhaseFactory(show_case_results=True)
    user = RegistrationFactory(challenge=phase.challenge).user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    near = {case: (a + 0.5, b + 0.5, c + 0.5) for case, (a, b, c) in HIDDEN_ANGLES.items()}
    client.force_login(user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(near)})
        client.post(
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
            {"file": csv_upload(content=predictions_csv(GOOD) + b"case_z,1,2,3\n")},
        )
    submissions = list(Submission.objects.filter(phase=phase))
    assert {s.status for s in submissions} == {"succeeded", "failed"}
    urls = (
        [
            reverse("challenges:list"),
            reverse("challenges:detail", args=[phase.challenge.slug]),
            *[
                reverse("challenges:detail", args=[phase.challenge.slug]) + f"?tab={tab}"
                for tab in ("phases", "data", "leaderboards", "baselines")
            ],
            phase.get_absolute_url(),
            reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug]),
            reverse("leaderboards:export-json", args=[phase.challenge.slug, phase.slug]),
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
            "/api/challenges/",
            f"/api/challenges/{phase.challenge.slug}/",
            "/api/phases/",
            f"/api/phases/{phase.pk}/",
            f"/api/phases/{phase.pk}/leaderboard/",
            f"/api/phases/{phase.pk}/quota/",
            "/api/submissions/",
            f"/api/datasets/{phase.dataset_id}/download/",
            "/api/schema/",
        ]
        + [s.get_absolute_url() for s in submissions]
        + [f"/api/submissions/{s.pk}/" for s in submissions]
    )
    secrets = hidden_strings()
    for who in (None, user, organizer):
        client.logout()
        if who:
            client.force_login(who)
        for url in urls:
            response = client.get(url)
            assert response.status_code in (200, 302, 401, 403, 404), (url, response.status_code)
            body = b"".join(response.streaming_content) if response.streaming else response.content
            text = body.decode(errors="replace")
            leaked = [secret for secret in secrets if secret in text]
            assert not leaked, f"{url} as {who}: shows hidden value(s) {leaked}"


def test_leaderboard_shows_rank_stability(client, eager_tasks, django_capture_on_commit_callbacks):
    angles = {f"case_{i:02d}": (20.0 + i, 15.0 + i / 2, 10.0 + i / 3) for i in range(12)}
    phase = PhaseFactory()
    link_phase_datasets(phase=phase, dataset=aasce_dataset(phase.challenge, split="test", slug="twelve", angles=angles))
    users = [RegistrationFactory(challenge=phase.challenge).user for _ in range(2)]
    far = {case: (a + 20, b + 20, c + 20) for case, (a, b, c) in angles.items()}  # worse on every case
    for user, predicted in zip(users, (angles, far)):
        client.force_login(user)
        with django_capture_on_commit_callbacks(execute=True):
            client.post(
                reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(predicted)}
            )
    board = client.get(phase.get_absolute_url()).content.decode()
    assert "Rank stability" in board
    assert board.count("<td>100%</td>") == 2  # one entry better on every case: neither ever moves


def test_few_cases_get_no_statistics(client, eager_tasks, django_capture_on_commit_callbacks):
    """Three test cases: a bootstrap interval's bound would be one case's value, so none is shown."""
    phase = PhaseFactory()
    client.force_login(RegistrationFactory(challenge=phase.challenge).user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(GOOD)})
    board = client.get(phase.get_absolute_url()).content.decode()
    assert "not available (fewer than 10 test cases)" in board and "ci-bar" not in board
