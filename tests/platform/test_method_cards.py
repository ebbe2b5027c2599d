"""Method cards on submissions (form, API, leaderboard, escaped and http(s)-only links) and the `chosen` selection
mode (a participant picks which succeeded submissions represent them; the best of those is ranked)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from spinebench.leaderboards.ranking import Entry, select_entries
from spinebench.leaderboards.services import leaderboard_rows
from spinebench.submissions.models import Submission

from .aasce_data import HIDDEN_ANGLES
from .conftest import csv_upload
from .factories import PhaseFactory, RegistrationFactory
from .test_api import api

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 1)


def entry(key, pk, value, *, chosen=False):
    return Entry(key=key, submission_pk=pk, created=T0 + timedelta(minutes=pk), metrics={"m": value}, chosen=chosen)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        # Nothing chosen: the best one counts (lower is better here).
        ([entry("a", 1, 5.0), entry("a", 2, 3.0)], {2}),
        # A choice restricts the entry to the chosen ones, even when a better one exists.
        ([entry("a", 1, 5.0, chosen=True), entry("a", 2, 3.0)], {1}),
        # Several chosen: the best of them; another participant without a choice keeps their best.
        (
            [entry("a", 1, 5.0, chosen=True), entry("a", 2, 3.0), entry("a", 3, 4.0, chosen=True),
             entry("b", 4, 9.0), entry("b", 5, 8.0)],
            {3, 5},
        ),
    ],
)
def test_chosen_policy_selects_the_best_chosen_entry(entries, expected):
    selected = select_entries(entries, policy="chosen", metric="m", direction="lower")
    assert {item.submission_pk for item in selected} == expected


def shifted(by: float) -> dict:
    return {case: tuple(value + by for value in angles) for case, angles in HIDDEN_ANGLES.items()}


def _submit(client, phase, user, angles, capture, **card):
    client.force_login(user)
    with capture(execute=True):
        response = client.post(
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]),
            {"file": csv_upload(angles) if angles else csv_upload(content=b"case_id,pt\nnope,1\n"), **card},
        )
    return response


def test_method_card_from_the_form_is_shown_escaped_with_links(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    response = _submit(
        client, phase, user, HIDDEN_ANGLES, django_capture_on_commit_callbacks,
        method_name="<b>SpineNet</b> v2", method_description="A U-Net.", paper_url="https://example.org/paper",
        code_url="http://example.org/code",
    )
    assert response.status_code == 302
    submission = Submission.objects.get(creator=user)
    assert (submission.method_name, submission.code_url) == ("<b>SpineNet</b> v2", "http://example.org/code")
    page = client.get(phase.get_absolute_url()).content.decode()
    assert "&lt;b&gt;SpineNet&lt;/b&gt; v2" in page and "<b>SpineNet</b>" not in page
    assert 'href="https://example.org/paper"' in page and 'href="http://example.org/code"' in page
    detail = client.get(submission.get_absolute_url()).content.decode()
    assert "A U-Net." in detail and "&lt;b&gt;SpineNet" in detail
    board = api().get(f"/api/phases/{phase.pk}/leaderboard/").json()
    assert board["rows"][0]["method_name"] == "<b>SpineNet</b> v2"
    assert board["rows"][0]["paper_url"] == "https://example.org/paper"


@pytest.mark.parametrize("bad", ["javascript:alert(1)", "ftp://example.org/x", "data:text/html,hi", "not a url"])
def test_a_non_web_link_is_refused_by_form_and_api_and_nothing_is_stored(
    client, bad, eager_tasks, django_capture_on_commit_callbacks
):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    response = _submit(client, phase, user, HIDDEN_ANGLES, django_capture_on_commit_callbacks, paper_url=bad)
    assert response.status_code == 200 and "paper_url" in response.context["form"].errors
    answer = api(user).post(
        f"/api/phases/{phase.pk}/submissions/", {"file": csv_upload(), "code_url": bad}, format="multipart"
    )
    assert answer.status_code == 400 and list(answer.json()) == ["code_url"]
    assert not Submission.objects.filter(phase=phase).exists()


@pytest.fixture
def chosen_phase(client, eager_tasks, django_capture_on_commit_callbacks):
    """A `chosen` phase (one pick) where the participant has a best, a worse and a failed submission."""
    phase = PhaseFactory(selection="chosen", max_chosen=1)
    user = RegistrationFactory(challenge=phase.challenge).user
    other = RegistrationFactory(challenge=phase.challenge).user
    for angles in (HIDDEN_ANGLES, shifted(4.0)):
        _submit(client, phase, user, angles, django_capture_on_commit_callbacks, method_name="m")
    _submit(client, phase, user, None, django_capture_on_commit_callbacks)
    failed = Submission.objects.get(phase=phase, creator=user, status="failed")
    _submit(client, phase, other, shifted(1.0), django_capture_on_commit_callbacks)
    best, worse = Submission.objects.filter(phase=phase, creator=user, status="succeeded").order_by("pk")
    theirs = Submission.objects.get(phase=phase, creator=other)
    return phase, user, best, worse, failed, theirs


def _ranked(phase) -> list[int]:
    return [row.submission.pk for row in leaderboard_rows(phase)]


def test_choosing_by_api_ranks_the_chosen_submission(chosen_phase):
    phase, user, best, worse, failed, theirs = chosen_phase
    assert _ranked(phase) == [best.pk, theirs.pk]  # until they choose, the best one counts
    answer = api(user).post(f"/api/phases/{phase.pk}/chosen/", {"submissions": [worse.pk]}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"max_chosen": 1, "chosen": [worse.pk], "choosable": [best.pk, worse.pk]}
    assert _ranked(phase) == [theirs.pk, worse.pk]  # worse (+4 degrees) now below the other participant (+1)
    assert api(user).get(f"/api/submissions/{worse.pk}/").json()["chosen"] is True
    assert api().get(f"/api/submissions/{worse.pk}/").json()["chosen"] is False  # a private choice
    assert api(user).post(f"/api/phases/{phase.pk}/chosen/", {"submissions": []}, format="json").status_code == 200
    assert _ranked(phase) == [best.pk, theirs.pk]


def test_choosing_a_failed_or_someone_elses_submission_is_a_friendly_error_that_changes_nothing(chosen_phase):
    phase, user, best, worse, failed, theirs = chosen_phase
    client = api(user)
    client.post(f"/api/phases/{phase.pk}/chosen/", {"submissions": [worse.pk]}, format="json")
    for picks, words in (
        ([failed.pk], "only succeeded submissions can be chosen"),
        ([theirs.pk], "is not one of your submissions"),
        ([best.pk, worse.pk], "Choose at most 1"),
    ):
        answer = client.post(f"/api/phases/{phase.pk}/chosen/", {"submissions": picks}, format="json")
        assert answer.status_code == 400 and list(answer.json()) == ["submissions"]
        assert words in " ".join(answer.json()["submissions"])
        assert list(Submission.objects.filter(phase=phase, chosen=True)) == [worse]


def test_the_choice_page(client, chosen_phase):
    phase, user, best, worse, failed, theirs = chosen_phase
    url = reverse("submissions:choose", args=[phase.challenge.slug, phase.slug])
    client.force_login(user)
    page = client.get(url).content.decode()
    assert f'value="{best.pk}"' in page and f'value="{worse.pk}"' in page and f'value="{failed.pk}"' not in page
    assert client.post(url, {"submissions": [worse.pk]}).status_code == 302
    assert _ranked(phase) == [theirs.pk, worse.pk]
    refused = client.post(url, {"submissions": [theirs.pk]})
    assert refused.status_code == 400 and "submissions" in refused.context["form"].errors
    assert list(Submission.objects.filter(phase=phase, chosen=True)) == [worse]


def test_a_phase_without_chosen_selection_has_nothing_to_choose(
    client, eager_tasks, django_capture_on_commit_callbacks
):
    phase = PhaseFactory()
    user = RegistrationFactory(challenge=phase.challenge).user
    _submit(client, phase, user, HIDDEN_ANGLES, django_capture_on_commit_callbacks)
    mine = Submission.objects.get(creator=user)
    answer = api(user).post(f"/api/phases/{phase.pk}/chosen/", {"submissions": [mine.pk]}, format="json")
    assert answer.status_code == 400 and "nothing to choose" in answer.json()["submissions"][0]
    assert not Submission.objects.filter(chosen=True).exists()


# --------------------------------------------------------------------------------------- editing a card afterwards


@pytest.fixture
def team_submission(client, eager_tasks, django_capture_on_commit_callbacks):
    """A scored submission of ana's team (ben is her team mate) with a card, on a phase that has closed since."""
    from spinebench.accounts.email_links import mark_verified
    from spinebench.teams import services as teams

    phase = PhaseFactory()
    ana, ben = (RegistrationFactory(challenge=phase.challenge, user__username=name).user for name in ("ana", "ben"))
    for user in (ana, ben):
        mark_verified(user=user, email=user.email)
    team = teams.create_team(challenge=phase.challenge, user=ana, name="Card Team")
    teams.accept(invitation=teams.invite(team=team, by=ana, who="ben"))
    _submit(client, phase, ana, HIDDEN_ANGLES, django_capture_on_commit_callbacks, method_name="OldNet",
            paper_url="https://example.org/old")
    submission = Submission.objects.get(creator=ana)
    assert submission.status == "succeeded" and submission.team == team
    phase.opens_at, phase.closes_at = timezone.now() - timedelta(days=2), timezone.now() - timedelta(days=1)
    phase.save(update_fields=["opens_at", "closes_at"])
    assert not phase.is_open()
    return submission


def _csv_export(client, phase) -> str:
    return client.get(reverse("leaderboards:export-csv", args=[phase.challenge.slug, phase.slug])).content.decode()


def test_the_submitter_edits_the_card_on_its_page_after_the_phase_closed(client, team_submission):
    phase = team_submission.phase
    detail = client.get(team_submission.get_absolute_url()).content.decode()
    edit_url = reverse("submissions:method-card", args=[team_submission.pk])
    assert f'href="{edit_url}"' in detail and "Edit the method card" in detail
    form = client.get(edit_url)
    assert form.status_code == 200 and form.context["form"].initial["method_name"] == "OldNet"
    bad = client.post(edit_url, {"method_name": "NewNet", "paper_url": "javascript:alert(1)"})
    assert bad.status_code == 200 and list(bad.context["form"].errors) == ["paper_url"]
    assert Submission.objects.get(pk=team_submission.pk).method_name == "OldNet"
    saved = client.post(edit_url, {"method_name": "NewNet", "method_description": "Now with a paper.",
                                   "paper_url": "https://example.org/new", "code_url": ""})
    assert saved.status_code == 302 and saved["Location"] == team_submission.get_absolute_url()
    rows = api().get(f"/api/phases/{phase.pk}/leaderboard/").json()["rows"]
    assert [(row["method_name"], row["paper_url"], row["rank"]) for row in rows] == [
        ("NewNet", "https://example.org/new", 1)
    ]
    export = _csv_export(client, phase)
    assert "NewNet" in export and "https://example.org/new" in export and "OldNet" not in export
    assert "Now with a paper." in client.get(team_submission.get_absolute_url()).content.decode()


def test_a_team_mate_patches_the_card_through_the_api_and_others_may_not(team_submission):
    from django.contrib.auth import get_user_model

    from tests.platform.conftest import api as token_api

    ben = get_user_model().objects.get(username="ben")
    url = f"/api/submissions/{team_submission.pk}/"
    changed = token_api(ben).patch(url, {"code_url": "https://example.org/code"}, format="json")
    assert changed.status_code == 200, changed.json()
    body = changed.json()
    assert (body["method_name"], body["paper_url"], body["code_url"]) == (
        "OldNet", "https://example.org/old", "https://example.org/code")  # left-out fields keep their values
    for bad, field in (({"paper_url": "ftp://example.org/x"}, "paper_url"), ({"status": "failed"}, "status"),
                       ({"method_name": "x" * 101}, "method_name")):
        refused = token_api(ben).patch(url, bad, format="json")
        assert refused.status_code == 400 and list(refused.json()) == [field], refused.json()
    stored = Submission.objects.get(pk=team_submission.pk)
    assert (stored.status, stored.paper_url, stored.method_name) == ("succeeded", "https://example.org/old", "OldNet")
    organizer = RegistrationFactory(challenge=team_submission.phase.challenge).user
    team_submission.phase.challenge.organizers.add(organizer)
    assert token_api(organizer).patch(url, {"method_name": "Theirs"}, format="json").status_code == 403
    assert token_api().patch(url, {"method_name": "Anon"}, format="json").status_code == 401
    assert Submission.objects.get(pk=team_submission.pk).method_name == "OldNet"


def test_a_card_edit_never_touches_scores_and_an_unchanged_card_writes_no_snapshot(team_submission):
    from spinebench.leaderboards.models import LeaderboardSnapshot
    from spinebench.submissions.card_edits import edit_method_card

    phase = team_submission.phase
    before = LeaderboardSnapshot.objects.filter(phase=phase).count()
    aggregates = team_submission.evaluation.aggregates
    assert edit_method_card(submission=team_submission, changes={"method_name": "OldNet"}) == []
    assert LeaderboardSnapshot.objects.filter(phase=phase).count() == before
    assert edit_method_card(submission=team_submission, changes={"method_name": " Renamed "}) == ["method_name"]
    assert LeaderboardSnapshot.objects.filter(phase=phase).count() == before + 1
    assert leaderboard_rows(phase)[0].method_name == "Renamed"
    team_submission.refresh_from_db()
    assert team_submission.evaluation.aggregates == aggregates and team_submission.evaluation.rank == 1
