"""Leaderboard history (every snapshot kept; rank over time per entry; the leaderboard as it was at a date; as
hidden as the leaderboard) and the compare view of two submissions (per-case paired differences, one Wilcoxon
signed-rank p-value checked against scipy; only where the phase's labels are public or for its organizers)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from django.urls import reverse
from scipy import stats

from spinebench.leaderboards.models import LeaderboardSnapshot
from spinebench.submissions.models import Submission

from .aasce_data import HIDDEN_ANGLES
from .conftest import csv_upload
from .factories import ChallengeFactory, PhaseFactory, RegistrationFactory, UserFactory, aasce_dataset
from .test_api import api

pytestmark = pytest.mark.django_db

ANGLES = {f"case_{i:02d}": (20.0 + 1.7 * i, 15.0 + 0.9 * i, 10.0 + 0.4 * i) for i in range(12)}
T1 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)


def shifted(angles: dict, by: float, *, wobble: float = 0.0) -> dict:
    return {
        case: tuple(value + by + (wobble * ((index % 3) - 1)) for value in triple)
        for index, (case, triple) in enumerate(angles.items())
    }


def _submit(client, phase, user, angles, capture) -> Submission:
    client.force_login(user)
    with capture(execute=True):
        client.post(
            reverse("submissions:create", args=[phase.challenge.slug, phase.slug]), {"file": csv_upload(angles)}
        )
    client.logout()
    return Submission.objects.filter(creator=user, phase=phase).latest("created")


@pytest.fixture
def two_entry_phase(client, eager_tasks, django_capture_on_commit_callbacks):
    """A first, then a better second participant: two snapshots, moved to T1 and T2."""
    phase = PhaseFactory()
    first = RegistrationFactory(challenge=phase.challenge).user
    second = RegistrationFactory(challenge=phase.challenge).user
    a = _submit(client, phase, first, shifted(HIDDEN_ANGLES, 3.0), django_capture_on_commit_callbacks)
    b = _submit(client, phase, second, shifted(HIDDEN_ANGLES, 1.0), django_capture_on_commit_callbacks)
    snapshots = list(LeaderboardSnapshot.objects.filter(phase=phase).order_by("pk"))
    assert len(snapshots) == 2  # one per scoring, the first one kept
    for snapshot, moment in zip(snapshots, (T1, T2)):
        LeaderboardSnapshot.objects.filter(pk=snapshot.pk).update(created=moment)
    return phase, first, second, a, b


def test_history_api_gives_rank_and_score_over_time(two_entry_phase):
    phase, first, second, a, b = two_entry_phase
    history = api().get(f"/api/phases/{phase.pk}/history/").json()
    assert history["metric"] == "smape" and len(history["times"]) == 2
    by_name = {series["participant"]: series["points"] for series in history["series"]}
    assert [(p["rank"], p["submission"]) for p in by_name[first.username]] == [(1, a.pk), (2, a.pk)]
    assert [(p["rank"], p["submission"]) for p in by_name[second.username]] == [(1, b.pk)]
    assert by_name[first.username][0]["value"] == pytest.approx(a.evaluation.aggregates["smape"])
    assert [series["participant"] for series in history["series"]] == [second.username, first.username]


def test_leaderboard_as_it_was_at_a_date(client, two_entry_phase):
    phase, first, second, a, b = two_entry_phase
    url = f"/api/phases/{phase.pk}/leaderboard/"
    then = api().get(url, {"at": "2026-03-02"}).json()  # a day: its end
    assert [row["submission"] for row in then["rows"]] == [a.pk] and then["as_of"].startswith("2026-03-01T12:00")
    now = api().get(url, {"at": "2026-03-05T13:00:00Z"}).json()
    assert [row["submission"] for row in now["rows"]] == [b.pk, a.pk]
    assert api().get(url, {"at": "2026-02-28"}).status_code == 404
    refused = api().get(url, {"at": "yesterday"})
    assert refused.status_code == 400 and list(refused.json()) == ["at"]
    page_url = reverse("leaderboards:history", args=[phase.challenge.slug, phase.slug])
    page = client.get(page_url, {"at": "2026-03-02"})
    assert page.status_code == 200
    table = page.content.decode().split('id="leaderboard-at"')[1].split("</table>")[0]
    assert first.username in table and second.username not in table
    assert client.get(page_url, {"at": "31/02/2026"}).status_code == 400


def test_history_page_draws_the_chart_and_the_table(client, two_entry_phase):
    phase, first, second, a, b = two_entry_phase
    page = client.get(reverse("leaderboards:history", args=[phase.challenge.slug, phase.slug])).content.decode()
    assert page.count("<polyline") == 2 and "<svg" in page and "style=" not in page.split("<svg")[1].split("</svg>")[0]
    table = page.split('id="history-table"')[1].split("</table>")[0]
    assert table.count("<tr>") == 1 + 3  # header, then first's two ranks and second's one
    assert "2026-03-01 12:00:00" in table and "2026-03-05 12:00:00" in table


def test_a_hidden_phase_history_is_as_hidden_as_its_leaderboard(client, two_entry_phase):
    phase, first, *_ = two_entry_phase
    phase.is_public = False
    phase.save()
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    page_url = reverse("leaderboards:history", args=[phase.challenge.slug, phase.slug])
    assert client.get(page_url).status_code == 404
    assert api(first).get(f"/api/phases/{phase.pk}/history/").status_code == 404
    assert api(first).get(f"/api/phases/{phase.pk}/leaderboard/", {"at": "2026-03-02"}).status_code == 404
    assert api(organizer).get(f"/api/phases/{phase.pk}/history/").status_code == 200
    client.force_login(organizer)
    assert client.get(page_url).status_code == 200


@pytest.fixture
def public_label_phase(client, eager_tasks, django_capture_on_commit_callbacks):
    """A phase scored against a training split (labels public) with per-case results shown: two participants."""
    challenge = ChallengeFactory()
    scored = aasce_dataset(challenge, split="train", slug="scored-train", angles=ANGLES)
    phase = PhaseFactory(challenge=challenge, dataset=scored, show_case_results=True)
    users = [RegistrationFactory(challenge=phase.challenge).user for _ in range(2)]
    a = _submit(client, phase, users[0], shifted(ANGLES, 0.5, wobble=0.7), django_capture_on_commit_callbacks)
    b = _submit(client, phase, users[1], shifted(ANGLES, 1.5, wobble=-0.4), django_capture_on_commit_callbacks)
    assert a.status == b.status == "succeeded"
    return phase, users, a, b


def test_compare_matches_an_independent_wilcoxon(client, public_label_phase):
    phase, users, a, b = public_label_phase
    answer = api(users[1]).get(f"/api/submissions/{a.pk}/compare/", {"with": b.pk})
    assert answer.status_code == 200, answer.content
    result = answer.json()
    cases = sorted(ANGLES)
    first = np.array([a.evaluation.case_metrics[c]["smape"] for c in cases])
    second = np.array([b.evaluation.case_metrics[c]["smape"] for c in cases])
    assert result["metric"] == "smape" and result["cases"] == cases
    assert result["differences"] == pytest.approx(list(first - second))
    assert result["p_value"] == pytest.approx(stats.wilcoxon(first, second, alternative="two-sided").pvalue)
    assert result["first_better"] == int(np.sum(first < second))  # smape: lower is better
    page = client.get(reverse("submissions:compare", args=[a.pk]), {"with": b.pk, "metric": "mae_pt"})
    assert page.status_code == 200 and page.context["comparison"].metric == "mae_pt"
    body = page.content.decode()
    assert body.count("<rect") == len(cases) and f"{page.context['comparison'].p_value:.4f}" in body


def test_compare_refuses_bad_input_with_a_keyed_error(client, public_label_phase, eager_tasks):
    phase, users, a, b = public_label_phase
    other_phase = PhaseFactory(challenge=phase.challenge)
    for params, field in (
        ({}, "with"), ({"with": "abc"}, "with"), ({"with": a.pk}, "with"), ({"with": 999999}, "with"),
        ({"with": b.pk, "metric": "no_such"}, "metric"),
    ):
        answer = api(users[0]).get(f"/api/submissions/{a.pk}/compare/", params)
        assert answer.status_code == 400 and list(answer.json()) == [field], (params, answer.content)
        assert client.get(reverse("submissions:compare", args=[a.pk]), {"with": "abc"}).status_code == 400
    elsewhere = Submission.objects.create(phase=other_phase, creator=users[0], status="succeeded")
    answer = api(users[0]).get(f"/api/submissions/{a.pk}/compare/", {"with": elsewhere.pk})
    assert answer.status_code == 400


def test_no_compare_for_participants_on_a_hidden_label_phase(client, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(show_case_results=True)  # scored against a test split: labels hidden
    users = [RegistrationFactory(challenge=phase.challenge).user for _ in range(2)]
    a = _submit(client, phase, users[0], shifted(HIDDEN_ANGLES, 0.5), django_capture_on_commit_callbacks)
    b = _submit(client, phase, users[1], shifted(HIDDEN_ANGLES, 1.5), django_capture_on_commit_callbacks)
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    for user in users:
        assert api(user).get(f"/api/submissions/{a.pk}/compare/", {"with": b.pk}).status_code == 404
        client.force_login(user)
        assert client.get(reverse("submissions:compare", args=[a.pk]), {"with": b.pk}).status_code == 404
    assert api(organizer).get(f"/api/submissions/{a.pk}/compare/", {"with": b.pk}).status_code == 200
    # From a comparable submission, a hidden-label one reads as missing (nothing about it leaks).
    answer = api(users[0]).get(f"/api/submissions/{a.pk}/compare/", {"with": b.pk})
    assert str(HIDDEN_ANGLES["case_a"][0]) not in answer.content.decode()
