"""Blind leaderboards: a visible phase whose submissions are scored while its participants see only "succeeded" or
"failed" (no score, no rank) in every page, API response, export, figure and notification, until its organizers
reveal the leaderboard in one audited action."""

import pytest
from django.test import Client
from django.urls import reverse

from spinebench.challenges.models import Phase
from spinebench.notifications.models import Notification
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.services import create_submission

from .aasce_data import HIDDEN_ANGLES, smape
from .conftest import api, csv_upload
from .factories import PhaseFactory, RegistrationFactory, UserFactory

pytestmark = pytest.mark.django_db

#: Predictions whose SMAPE has distinctive digits.
PREDICTIONS = {"case_a": (33.0, 29.5, 13.25), "case_b": (16.5, 23.0, 12.0), "case_c": (25.75, 18.0, 12.5)}


@pytest.fixture
def blind(db, eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(score_visibility=Phase.ScoreVisibility.BLIND, show_case_results=True)
    participant = RegistrationFactory(challenge=phase.challenge).user
    other = RegistrationFactory(challenge=phase.challenge).user
    organizer = UserFactory()
    phase.challenge.organizers.add(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        submission = create_submission(phase=phase, user=participant, upload=csv_upload(PREDICTIONS))
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    value = smape(HIDDEN_ANGLES, PREDICTIONS)
    assert submission.evaluation.aggregates["smape"] == pytest.approx(value, abs=1e-9)  # scored, and ranked
    assert submission.evaluation.rank == 1
    # As pages write it (3 decimals) and as JSON and CSV write it (all digits).
    secrets = (f"{value:.3f}", repr(value)[:7])
    return {"phase": phase, "participant": participant, "other": other, "organizer": organizer,
            "submission": submission, "secrets": secrets}


def _pages(blind) -> dict[str, str]:
    phase, submission = blind["phase"], blind["submission"]
    board = {"challenge": phase.challenge.slug, "phase": phase.slug}
    return {
        "leaderboard": reverse("leaderboards:phase", kwargs=board),
        "challenge tab": reverse("challenges:detail", kwargs={"slug": phase.challenge.slug}) + "?tab=leaderboards",
        "submission page": reverse("submissions:detail", kwargs={"pk": submission.pk}),
        "export csv": reverse("leaderboards:export-csv", kwargs=board),
        "export json": reverse("leaderboards:export-json", kwargs=board),
        "bland-altman plot": reverse("submissions:plot", kwargs={"pk": submission.pk, "kind": "bland-altman"}),
        "case viewer": reverse("submissions:case", kwargs={"pk": submission.pk, "case_id": "case_a"}),
        "api submission": f"/api/submissions/{submission.pk}/",
        "api my submissions": "/api/submissions/",
        "api leaderboard": f"/api/phases/{phase.pk}/leaderboard/",
        "notifications": reverse("notifications:list"),
        "api notifications": "/api/notifications/",
    }


def _texts(blind, user) -> dict[str, tuple[int, str]]:
    page_client = Client()
    if user is not None:
        page_client.force_login(user)
    api_client = api(user)
    texts = {}
    for name, url in _pages(blind).items():
        client = api_client if url.startswith("/api/") else page_client
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        texts[name] = (response.status_code, body.decode(errors="replace"))
    return texts


def test_no_score_or_rank_of_a_blind_phase_reaches_its_participants(blind):
    def leaked(text: str) -> bool:
        return any(secret in text for secret in blind["secrets"])

    for who in ("participant", "other"):
        for name, (_, text) in _texts(blind, blind[who]).items():
            assert not leaked(text), f"{who}: the score leaked through {name}"
    texts = _texts(blind, blind["participant"])
    assert texts["api submission"][0] == 200
    own = api(blind["participant"]).get(f"/api/submissions/{blind['submission'].pk}/").json()
    assert (own["status"], own["rank"], own["aggregates"], own["case_metrics"]) == ("succeeded", None, None, None)
    assert texts["leaderboard"][0] == 200 and 'id="blind-leaderboard"' in texts["leaderboard"][1]
    assert 'id="blind-note"' in texts["submission page"][1] and 'id="rank"' not in texts["submission page"][1]
    assert texts["export csv"][0] == 404 and texts["export json"][0] == 404
    assert texts["api leaderboard"][0] == 403
    assert texts["bland-altman plot"][0] == 404 and texts["case viewer"][0] == 404
    assert Notification.objects.filter(user=blind["participant"], kind="submission_succeeded").exists()
    # Anonymous visitors get nothing either; another participant does not even see the submission.
    assert not any(leaked(text) for _, text in _texts(blind, None).values())
    assert api(blind["other"]).get(f"/api/submissions/{blind['submission'].pk}/").status_code == 404


def test_organizers_see_the_blind_leaderboard(blind):
    texts = _texts(blind, blind["organizer"])
    for name in ("leaderboard", "submission page", "export csv", "export json", "api submission", "api leaderboard"):
        status, text = texts[name]
        assert status == 200 and any(secret in text for secret in blind["secrets"]), name
    assert 'id="blind-for-organizers"' in texts["leaderboard"][1]


def test_reveal_is_one_audited_action(blind):
    phase = blind["phase"]
    assert api(blind["participant"]).post(f"/api/phases/{phase.pk}/reveal/").status_code == 404
    response = api(blind["organizer"]).post(f"/api/phases/{phase.pk}/reveal/")
    assert response.status_code == 200 and response.json()["scores_revealed_at"]
    event = AuditEvent.objects.get(action="leaderboard.reveal")
    assert event.actor == blind["organizer"] and event.target == f"phase {phase.pk} ({phase.slug})"
    again = api(blind["organizer"]).post(f"/api/phases/{phase.pk}/reveal/")
    assert again.status_code == 409 and "was revealed at" in again.json()["detail"]
    texts = _texts(blind, blind["other"])
    page, export = blind["secrets"]
    assert page in texts["leaderboard"][1] and export in texts["export csv"][1]
    own = api(blind["participant"]).get(f"/api/submissions/{blind['submission'].pk}/").json()
    assert own["rank"] == 1 and own["aggregates"]["smape"] == pytest.approx(smape(HIDDEN_ANGLES, PREDICTIONS))


def test_reveal_from_the_scoring_page(blind):
    phase = blind["phase"]
    client = Client()
    client.force_login(blind["organizer"])
    page = f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/rescore/"
    assert 'id="reveal"' in client.get(page).content.decode()
    response = client.post(f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/reveal/")
    assert response.status_code == 302 and response["Location"] == page
    phase.refresh_from_db()
    assert phase.scores_revealed_at is not None and not phase.scores_hidden
    assert 'id="reveal"' not in client.get(page).content.decode()
    public = PhaseFactory(challenge=phase.challenge)
    client.post(f"/organizers/{phase.challenge.slug}/phases/{public.slug}/reveal/")
    assert AuditEvent.objects.filter(action="leaderboard.reveal").count() == 1  # a public phase has nothing to reveal


def test_a_bundle_makes_a_phase_blind(tmp_path):
    from pathlib import Path

    from django.conf import settings

    from spinebench.challenges.bundles import BundleError
    from spinebench.datasets.bundles import import_bundle

    from .aasce_data import TRAIN_ANGLES, write_aasce_dataset
    from .test_bundles import FAST, minimal, write_bundle

    write_aasce_dataset(Path(settings.DATASETS_ROOT) / "mini-src" / "train", TRAIN_ANGLES, split="train")

    challenge = import_bundle(write_bundle(tmp_path / "b", minimal(leaderboard={"score_visibility": "blind"})), FAST)
    assert challenge.phases.get().scores_hidden
    with pytest.raises(BundleError, match="phases\\[0\\].leaderboard.score_visibility: Value 'secret'"):
        import_bundle(write_bundle(tmp_path / "c", minimal(leaderboard={"score_visibility": "secret"})), FAST)
