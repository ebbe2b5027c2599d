"""Split phases keep their private part secret: no score, rank, per-case value, figure or count of the private test
cases reaches a participant or visitor before the organizers reveal the final leaderboard (pages, API, exports,
history, compare view, dashboard, notifications), and per-case values of the private cases never do. The public
part is shown as on any phase. (The pattern of test_blind.py, with the private part as the secret.)"""

import pytest
from django.test import Client
from django.urls import reverse

from spinebench.submissions.services import create_submission

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import api, csv_upload
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

PUBLIC = ["case_a"]
PRIVATE = ["case_b", "case_c"]
#: Predictions whose SMAPE on each part has distinctive digits.
PREDICTIONS = {"case_a": (33.0, 29.5, 13.25), "case_b": (16.5, 23.0, 12.0), "case_c": (25.75, 18.0, 12.5)}
OTHER = {"case_a": (31.0, 27.5, 14.5), "case_b": (21.25, 18.5, 15.0), "case_c": (20.5, 23.5, 9.75)}


def _part(predictions, cases):
    return smape({case: HIDDEN_ANGLES[case] for case in cases}, {case: predictions[case] for case in cases})


def _forms(value: float) -> tuple[str, str]:
    """As pages write it (3 decimals) and as JSON and CSV write it (all digits)."""
    return f"{value:.3f}", repr(value)[:7]


@pytest.fixture
def split(db, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(score_visibility="split", public_case_ids=PUBLIC, show_case_results=True)
    participant = RegistrationFactory(challenge=phase.challenge).user
    other = RegistrationFactory(challenge=phase.challenge).user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    made = {}
    for user, predictions in ((participant, PREDICTIONS), (other, OTHER)):
        with django_capture_on_commit_callbacks(execute=True):
            made[user.pk] = create_submission(phase=phase, user=user, upload=csv_upload(predictions))
        made[user.pk].refresh_from_db()
        assert made[user.pk].status == "succeeded", made[user.pk].error_message
    submission = made[participant.pk]
    assert submission.evaluation.aggregates["smape"] == pytest.approx(_part(PREDICTIONS, PUBLIC), abs=1e-9)
    private = submission.private_evaluation
    assert private.aggregates["smape"] == pytest.approx(_part(PREDICTIONS, PRIVATE), abs=1e-9)
    # The two submissions rank one way on the public part and the other way on the private part.
    assert submission.evaluation.rank == 2 and private.rank == 1
    case_values = [private.metrics["case"][case]["smape"] for case in PRIVATE]
    return {
        "phase": phase, "participant": participant, "other": other, "organizer": organizer,
        "submission": submission, "rival": made[other.pk],
        "private scores": _forms(private.aggregates["smape"]) + _forms(made[other.pk].private_evaluation.aggregates[
            "smape"]),
        "private cases": tuple(text for value in case_values for text in _forms(value)),
        "public score": _forms(submission.evaluation.aggregates["smape"]),
    }


def _pages(split) -> dict[str, str]:
    phase, submission = split["phase"], split["submission"]
    board = {"challenge": phase.challenge.slug, "phase": phase.slug}
    leaderboard = reverse("leaderboards:phase", kwargs=board)
    return {
        "leaderboard": leaderboard,
        "final leaderboard": leaderboard + "?part=final",
        "challenge tab": reverse("challenges:detail", kwargs={"slug": phase.challenge.slug}) + "?tab=leaderboards",
        "history page": reverse("leaderboards:history", kwargs=board),
        "final history page": reverse("leaderboards:history", kwargs=board) + "?part=final",
        "final history at a date": reverse("leaderboards:history", kwargs=board) + "?part=final&at=2100-01-01",
        "submission page": reverse("submissions:detail", kwargs={"pk": submission.pk}),
        "compare page": reverse("submissions:compare", kwargs={"pk": submission.pk})
        + f"?other={split['rival'].pk}",
        "export csv": reverse("leaderboards:export-csv", kwargs=board),
        "export json": reverse("leaderboards:export-json", kwargs=board),
        "final export csv": reverse("leaderboards:export-csv", kwargs=board) + "?part=final",
        "final export json": reverse("leaderboards:export-json", kwargs=board) + "?part=final",
        "private case viewer": reverse("submissions:case", kwargs={"pk": submission.pk, "case_id": "case_b"}),
        "dashboard": "/dashboard/",
        "notifications": reverse("notifications:list"),
        "api phase": f"/api/phases/{phase.pk}/",
        "api submission": f"/api/submissions/{submission.pk}/",
        "api submissions": "/api/submissions/",
        "api my submissions": "/api/my-submissions/",
        "api leaderboard": f"/api/phases/{phase.pk}/leaderboard/",
        "api final leaderboard": f"/api/phases/{phase.pk}/leaderboard/?part=final",
        "api history": f"/api/phases/{phase.pk}/history/",
        "api final history": f"/api/phases/{phase.pk}/history/?part=final",
        "api compare": f"/api/submissions/{submission.pk}/compare/?other={split['rival'].pk}",
        "api quota": f"/api/phases/{phase.pk}/quota/",
        "api notifications": "/api/notifications/",
    }


def _texts(split, user) -> dict[str, tuple[int, str]]:
    page_client = Client()
    if user is not None:
        page_client.force_login(user)
    api_client = api(user)
    texts = {}
    for name, url in _pages(split).items():
        client = api_client if url.startswith("/api/") else page_client
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        texts[name] = (response.status_code, body.decode(errors="replace"))
    return texts


def _leaks(texts, secrets) -> list[str]:
    return [f"{name}: {secret}" for name, (_, text) in texts.items() for secret in secrets if secret in text]


def test_no_private_part_value_reaches_a_participant_before_the_reveal(split):
    secrets = split["private scores"] + split["private cases"]
    for who in ("participant", "other"):
        texts = _texts(split, split[who])
        assert _leaks(texts, secrets) == [], who
    texts = _texts(split, split["participant"])
    assert _leaks(_texts(split, None), secrets) == []
    # The public part is shown as on any phase: the live leaderboard, the submission page and the API.
    for name in ("leaderboard", "submission page", "export csv", "api leaderboard", "api submission"):
        status, text = texts[name]
        assert status == 200 and any(value in text for value in split["public score"]), name
    for name in ("final leaderboard", "final export csv", "final export json", "final history page",
                 "final history at a date"):
        assert texts[name][0] == 404, name
    assert texts["api final leaderboard"][0] == 403 and texts["api final history"][0] == 403
    assert 'id="part-final"' not in texts["leaderboard"][1] and 'id="part-note"' in texts["leaderboard"][1]
    own = api(split["participant"]).get(f"/api/submissions/{split['submission'].pk}/").json()
    assert own["rank"] == 2 and set(own["case_metrics"]) == set(PUBLIC)


def test_organizers_see_both_parts(split):
    texts = _texts(split, split["organizer"])
    for name in ("final leaderboard", "final export csv", "final export json", "api final leaderboard",
                 "final history at a date"):
        status, text = texts[name]
        assert status == 200 and any(secret in text for secret in split["private scores"]), name
    assert 'id="final-for-organizers"' in texts["final leaderboard"][1]
    assert texts["api final history"][0] == 200


def test_the_reveal_shows_the_final_leaderboard_but_never_private_case_values(split):
    phase = split["phase"]
    assert api(split["participant"]).post(f"/api/phases/{phase.pk}/reveal/").status_code == 404
    response = api(split["organizer"]).post(f"/api/phases/{phase.pk}/reveal/")
    assert response.status_code == 200 and response.json()["scores_revealed_at"]
    texts = _texts(split, split["other"])
    assert _leaks(texts, split["private cases"]) == []
    for name in ("final leaderboard", "final export csv", "api final leaderboard"):
        status, text = texts[name]
        assert status == 200 and split["private scores"][0 if name == "final leaderboard" else 1] in text, name
    final = api(split["other"]).get(f"/api/phases/{phase.pk}/leaderboard/?part=final").json()
    assert [row["submission"] for row in final["rows"]] == [split["submission"].pk, split["rival"].pk]
    assert 'id="part-final"' in texts["leaderboard"][1]
    client = Client()
    client.force_login(split["organizer"])
    scoring = client.get(f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/rescore/").content.decode()
    assert "final leaderboard revealed at" in scoring and 'id="reveal"' not in scoring


def test_the_monitor_shows_organizers_both_parts(split):
    submission = split["submission"]
    client = Client()
    client.force_login(split["organizer"])
    page = client.get(reverse("organizer_evaluation:submission",
                              kwargs={"challenge": split["phase"].challenge.slug, "pk": submission.pk}))
    text = page.content.decode()
    assert 'id="private-aggregates"' in text and split["private scores"][0] in text
    body = api(split["organizer"]).get(f"/api/monitor/submissions/{submission.pk}/").json()
    assert body["evaluation"]["part"] == "public" and body["private_evaluation"]["rank"] == 1
    assert body["private_evaluation"]["aggregates"]["smape"] == pytest.approx(_part(PREDICTIONS, PRIVATE))
