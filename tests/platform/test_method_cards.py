"""Method cards on submissions (form, API, leaderboard, escaped and http(s)-only links) and the `chosen` selection
mode (a participant picks which succeeded submissions represent them; the best of those is ranked)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.urls import reverse

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
