"""A split phase in a real browser: its organizer makes the phase split in the phase editor (public case ids typed
in), a participant's submission is scored once per part, the live leaderboard shows the public part and the final
leaderboard (private part) is the organizer's alone until the organizer reveals it from the scoring page; then the
participant sees it."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from playwright.sync_api import expect

from spinebench.organizers.models import AuditEvent
from spinebench.submissions.services import create_submission
from tests.platform.aasce_data import predictions_csv
from tests.platform.factories import PhaseFactory, RegistrationFactory, UserFactory

from .conftest import assert_accessible
from .test_ct_viewer import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

NEAR = {"case_a": (33.0, 29.5, 13.25), "case_b": (16.5, 23.0, 12.0), "case_c": (25.75, 18.0, 12.5)}


def test_configure_a_split_and_reveal_the_final_leaderboard(page, browser, live_server, eager_tasks):
    phase = PhaseFactory(slug="final", title="Final", opens_at=None, closes_at=None)
    organizer = UserFactory(username="org")
    phase.challenge.organizers.add(organizer)
    participant = RegistrationFactory(challenge=phase.challenge, user__username="ana").user

    organizer_context = browser.new_context(base_url=live_server.url)
    organizer_page = organizer_context.new_page()
    try:
        log_in(organizer_page, organizer)
        organizer_page.goto(f"/challenges/{phase.challenge.slug}/manage/phases/{phase.pk}/")
        organizer_page.get_by_label("Score visibility").select_option("split")
        organizer_page.get_by_label("Public case ids").fill("case_a, case_zz")
        organizer_page.get_by_role("button", name="Save the phase").click()
        expect(organizer_page.get_by_text("not cases of the test set: case_zz")).to_be_visible()
        organizer_page.get_by_label("Public case ids").fill("case_a")
        organizer_page.get_by_role("button", name="Save the phase").click()
        expect(organizer_page.get_by_text("Phase Final saved.")).to_be_visible()
        phase.refresh_from_db()
        assert (phase.score_visibility, phase.public_case_ids) == ("split", ["case_a"])

        upload = SimpleUploadedFile("predictions.csv", predictions_csv(NEAR), content_type="text/csv")
        submission = create_submission(phase=phase, user=participant, upload=upload)
        submission.refresh_from_db()
        assert submission.status == "succeeded", submission.error_message
        public = f"{submission.evaluation.aggregates['smape']:.3f}"
        private = f"{submission.private_evaluation.aggregates['smape']:.3f}"
        assert public != private

        log_in(page, participant)
        page.goto(phase.get_absolute_url())
        expect(page.locator("#leaderboard tbody tr").first).to_contain_text(public)
        expect(page.locator("#part-final")).to_have_count(0)
        assert private not in page.content()
        assert_accessible(page)

        organizer_page.goto(phase.get_absolute_url())
        organizer_page.get_by_role("link", name="Final leaderboard (private part)").click()
        expect(organizer_page.locator("#final-for-organizers")).to_be_visible()
        expect(organizer_page.locator("#leaderboard tbody tr").first).to_contain_text(private)
        assert_accessible(organizer_page)
        organizer_page.goto(f"/organizers/{phase.challenge.slug}/phases/{phase.slug}/rescore/")
        reveal = organizer_page.get_by_role("button", name="Reveal the final leaderboard")
        reveal.focus()
        organizer_page.keyboard.press("Enter")
        expect(organizer_page.locator("#visibility")).to_contain_text("final leaderboard revealed at")
        assert AuditEvent.objects.filter(action="leaderboard.reveal", actor=organizer).count() == 1
    finally:
        organizer_context.close()

    page.goto(phase.get_absolute_url())
    page.get_by_role("link", name="Final leaderboard (private part)").click()
    rows = page.locator("#leaderboard tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("ana")
    expect(rows.first).to_contain_text(private)
