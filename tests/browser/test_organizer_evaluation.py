"""Organizers' scoring control in a real browser: a participant of a blind phase sees "succeeded" and no score; its
organizer reveals the leaderboard from the phase's scoring page (keyboard only), after which the participant sees
the ranked leaderboard; the organizer also re-scores the phase from the same page (embedded mode: the job runs in
the request, so its row shows it finished under evaluation version 2)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from spinebench.challenges.models import Phase
from spinebench.organizers.models import AuditEvent
from spinebench.submissions.services import create_submission
from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv
from tests.platform.factories import PhaseFactory, RegistrationFactory, UserFactory

from .conftest import assert_accessible
from .test_ct_viewer import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}


@pytest.fixture
def blind_phase(eager_tasks):
    phase = PhaseFactory(slug="final", title="Final", score_visibility=Phase.ScoreVisibility.BLIND)
    participant = RegistrationFactory(challenge=phase.challenge, user__username="ana").user
    upload = SimpleUploadedFile("predictions.csv", predictions_csv(NEAR), content_type="text/csv")
    submission = create_submission(phase=phase, user=participant, upload=upload)
    submission.refresh_from_db()
    assert submission.status == "succeeded", submission.error_message
    organizer = UserFactory(username="org")
    phase.challenge.organizers.add(organizer)
    return {"phase": phase, "participant": participant, "organizer": organizer, "submission": submission}


def test_reveal_a_blind_leaderboard(page, browser, live_server, blind_phase):
    phase, submission = blind_phase["phase"], blind_phase["submission"]
    score = f"{submission.evaluation.aggregates['smape']:.3f}"

    log_in(page, blind_phase["participant"])
    page.goto(phase.get_absolute_url())
    expect(page.locator("#blind-leaderboard")).to_be_visible()
    expect(page.locator("#leaderboard")).to_have_count(0)
    page.goto(submission.get_absolute_url())
    expect(page.locator("#status")).to_have_text("succeeded")
    expect(page.locator("#blind-note")).to_be_visible()
    assert score not in page.content()
    assert_accessible(page)

    organizer_context = browser.new_context(base_url=live_server.url)
    organizer_page = organizer_context.new_page()
    try:
        log_in(organizer_page, blind_phase["organizer"])
        organizer_page.goto(f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/rescore/")
        expect(organizer_page.get_by_role("heading", name="Scoring of Final", level=1)).to_be_visible()
        assert_accessible(organizer_page)
        reveal = organizer_page.get_by_role("button", name="Reveal the leaderboard")
        reveal.focus()
        organizer_page.keyboard.press("Enter")
        expect(organizer_page.locator("#visibility")).to_contain_text("revealed at")
        expect(organizer_page.get_by_role("button", name="Reveal the leaderboard")).to_have_count(0)
        assert AuditEvent.objects.filter(action="leaderboard.reveal", actor=blind_phase["organizer"]).count() == 1

        # Re-score from the same page.
        organizer_page.get_by_label("Why").fill("evaluator update")
        organizer_page.get_by_role("button", name="Re-score the phase").click()
        expect(organizer_page.locator("#rescore-jobs")).to_contain_text("succeeded")
        expect(organizer_page.locator("#rescore-jobs")).to_contain_text("1 of 1")
        expect(organizer_page.locator("#evaluation-version")).to_have_text("2")
    finally:
        organizer_context.close()

    page.goto(phase.get_absolute_url())
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ana")
    expect(rows.first).to_contain_text(score)
    page.goto(submission.get_absolute_url())
    expect(page.locator("#rank")).to_have_text("1")
