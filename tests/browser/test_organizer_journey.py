"""The organizer's whole journey in a real browser, through the pages only, as a user without staff rights (issue
12's "Done when"): import a challenge from a bundle zip (the import job held, then run by the test as the worker while
htmx polls its status), edit the phase (a refused date pair first, then blind with a new closing date), add a
required registration question and publish terms; a participant in a second context registers (refused without the
answer), is approved, is refused a submission until they accept the terms, submits and sees "succeeded" but no
score; the organizer finds the submission in the monitor, reads its log, hides it with a reason the participant
reads, restores it, re-scores the phase (the job held, then run, progress through htmx) and reveals the leaderboard,
after which the participant sees the score and the rank. Expected scores are the test's own SMAPE."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from spinebench.challenges.models import Challenge, Registration
from spinebench.evaluation.models import RescoreJob
from spinebench.evaluation.tasks import rescore_phase
from spinebench.organizers.models import AuditEvent, BundleImport
from spinebench.organizers.tasks import import_bundle
from spinebench.submissions.models import Submission
from tests.platform.aasce_data import predictions_csv, smape
from tests.platform.factories import UserFactory
from tests.platform.test_bundle_upload import zipped
from tests.platform.test_organizer_journey_api import hidden_angles, journey_bundle, shifted

from .conftest import DESKTOP, assert_accessible
from .test_organizer_console import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class HeldTask:
    """Holds a Celery task's dispatches (the web request only queues it) until the test runs them as the worker."""

    def __init__(self, monkeypatch, task) -> None:
        self.task = task
        self.queued: list[dict] = []
        monkeypatch.setattr(task, "delay", lambda **kwargs: self.queued.append(kwargs))

    def run(self) -> None:
        assert self.queued, f"{self.task.name} was never dispatched"
        while self.queued:
            self.task(**self.queued.pop(0))


def test_the_organizer_journey_in_the_browser(page, browser, live_server, tmp_path, eager_tasks, monkeypatch):
    host = UserFactory(username="host")
    assert not host.is_staff and not host.is_superuser
    import_worker = HeldTask(monkeypatch, import_bundle)
    rescore_worker = HeldTask(monkeypatch, rescore_phase)
    console = page.get_by_role("navigation", name="Console sections")

    # (1) sign in, upload the bundle zip on the import page, watch the job finish, land in the console
    log_in(page, host)
    page.goto("/manage/")
    page.get_by_role("link", name="Import a challenge bundle (zip)").click()
    expect(page.get_by_role("heading", name="Import a challenge bundle", level=1)).to_be_visible()
    assert_accessible(page)
    bundle_zip = tmp_path / "journey.zip"
    bundle_zip.write_bytes(zipped(journey_bundle()).read())
    page.get_by_label("Bundle").set_input_files(str(bundle_zip))
    page.get_by_role("button", name="Upload and import").click()
    status = page.locator("#import-status")
    expect(status.locator("strong")).to_have_text("Waiting for a worker")
    assert not Challenge.objects.filter(slug="journey").exists()
    import_worker.run()
    expect(status.locator("strong")).to_have_text("Imported")  # htmx polled the status block; no reload
    assert BundleImport.objects.get().progress == 100
    page.get_by_role("link", name="Manage Journey challenge").click()
    expect(page.get_by_role("heading", name="Journey challenge", level=1)).to_be_visible()
    challenge = Challenge.objects.get(slug="journey")
    assert list(challenge.organizers.all()) == [host]
    phase = challenge.phases.get()
    truth = hidden_angles(phase)

    # (2) the phase editor: a closing date before the opening one is refused and changes nothing; then blind
    console.get_by_role("link", name="Phases").click()
    page.locator("#phase-table").get_by_role("link", name="Test").click()
    page.locator("#id_opens_at").fill("2020-01-02T00:00")
    page.locator("#id_closes_at").fill("2020-01-01T00:00")
    page.locator("#id_score_visibility").select_option("blind")
    page.get_by_role("button", name="Save the phase").click()
    expect(page.locator("#error_1_id_closes_at, .invalid-feedback").first).to_contain_text("after opens_at")
    phase.refresh_from_db()
    assert (phase.score_visibility, phase.closes_at) == ("public", None)
    page.locator("#id_closes_at").fill("2039-06-30T12:00")
    page.get_by_role("button", name="Save the phase").click()
    expect(page.locator("#phase-table")).to_contain_text("Test")
    phase.refresh_from_db()
    assert phase.score_visibility == "blind"
    assert phase.closes_at.isoformat() == "2039-06-30T12:00:00+00:00"

    # (3) a required question, then the terms
    console.get_by_role("link", name="Registrations").click()
    page.get_by_role("link", name="Registration questions").click()
    page.locator("#id_label").fill("Your institution")
    page.locator("#id_kind").select_option("text")
    page.locator("#id_required").check()
    page.get_by_role("button", name="Add the question").click()
    expect(page.locator("#question-table")).to_contain_text("Your institution")
    question = challenge.registration_questions.get()
    console.get_by_role("link", name="Registrations").click()
    page.get_by_role("link", name="Terms and data-use agreement").click()
    page.get_by_label("Terms (markdown)").fill("Use the images for **research** only.")
    page.get_by_role("button", name="Publish a new version").click()
    expect(page.locator("#terms-table tbody tr")).to_have_count(1)
    assert_accessible(page)

    # (4) a participant, in a context of their own, registers: refused without the answer, then waiting
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    visitor = context.new_page()
    try:
        participant = UserFactory(username="runner")
        log_in(visitor, participant)
        visitor.goto(challenge.get_absolute_url())
        visitor.locator("#registration-form").get_by_role("button", name="Join Journey challenge").click()
        expect(visitor.locator(f"#error_1_id_{question.field_name}")).to_contain_text("This field is required")
        assert not Registration.objects.filter(user=participant).exists()
        visitor.get_by_label("Your institution").fill("Spine Institute Basel")
        visitor.get_by_role("button", name="Join the challenge").click()
        expect(visitor.get_by_text("Your registration is waiting for approval.")).to_be_visible()

        # (5) the organizer reads the answer and approves
        page.goto(f"/challenges/{challenge.slug}/manage/registrations/")
        table = page.locator("#registration-table")
        expect(table).to_contain_text("Spine Institute Basel")
        page.get_by_label("Select runner").check()
        page.get_by_role("button", name="Approve selected").click()
        expect(table).to_contain_text("approved")
        assert Registration.objects.get(user=participant).status == Registration.Status.APPROVED

        # (6) a submission is refused until the terms are accepted; then it is scored, and the phase stays blind
        predicted = shifted(truth, 1.5)
        expected = f"{smape(truth, predicted):.{phase.decimal_places}f}"
        upload = {"name": "predictions.csv", "mimeType": "text/csv", "buffer": predictions_csv(predicted)}
        visitor.goto(phase.get_absolute_url())
        visitor.get_by_role("link", name="Submit").first.click()
        submit_url = visitor.url
        visitor.get_by_label("File").set_input_files(upload)
        visitor.get_by_role("button", name="Submit").click()
        expect(visitor.get_by_text("Accept the current terms of Journey challenge")).to_be_visible()
        assert not Submission.objects.exists()
        visitor.goto(challenge.get_absolute_url())
        visitor.get_by_role("link", name="Read and accept the terms").click()
        expect(visitor.locator(".sb-description strong")).to_have_text("research")
        visitor.get_by_role("button", name="I accept version 1 of these terms").click()
        visitor.goto(submit_url)
        visitor.get_by_label("File").set_input_files(upload)
        visitor.get_by_role("button", name="Submit").click()
        expect(visitor.locator("#status")).to_have_text("succeeded")
        expect(visitor.locator("#blind-note")).to_be_visible()
        expect(visitor.locator("#rank")).to_have_count(0)
        assert expected not in visitor.content()
        submission = Submission.objects.get()
        assert_accessible(visitor)

        # (7) the monitor: filter, open, read the log, hide with a reason the participant reads, restore
        console.get_by_role("link", name="Submissions").click()
        page.get_by_label("Status").select_option("failed")
        page.get_by_role("button", name="Filter").click()
        expect(page.get_by_text("No submission matches.")).to_be_visible()
        page.get_by_label("Status").select_option("succeeded")
        page.get_by_label("Participant").fill("runner")
        page.get_by_role("button", name="Filter").click()
        rows = page.locator("#monitor tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("runner")
        rows.first.get_by_role("link", name=str(submission.pk)).click()
        expect(page.locator("#no-logs")).to_contain_text("a predictions upload is scored directly")
        expect(page.locator("#aggregates")).to_contain_text(expected)  # organizers see the blind score
        assert_accessible(page)
        page.get_by_label("Reason (shown to the submitter)").fill("predictions copied from another team")
        page.locator("#hide").click()
        expect(page.locator("#hidden-reason")).to_contain_text("predictions copied from another team")
        visitor.goto(submission.get_absolute_url())
        expect(visitor.locator("#hidden-reason")).to_contain_text("predictions copied from another team")
        page.locator("#restore").click()
        expect(page.locator("#hide")).to_be_visible()
        visitor.reload()
        expect(visitor.locator("#hidden-reason")).to_have_count(0)

        # (8) re-score the phase: the job waits, the test runs it as the worker, htmx shows it finish
        console.get_by_role("link", name="Phases").click()
        page.locator("#phase-table").get_by_role("link", name="Scoring").click()
        page.get_by_label("Why").fill("labels checked")
        page.get_by_role("button", name="Re-score the phase").click()
        job_row = page.locator("#rescore-jobs tbody tr").first
        expect(job_row).to_contain_text("0 of 1")
        rescore_worker.run()
        expect(job_row).to_contain_text("succeeded")  # polled, no reload
        expect(job_row).to_contain_text("1 of 1")
        assert RescoreJob.objects.get().status == "succeeded"
        page.reload()
        expect(page.locator("#evaluation-version")).to_have_text("2")

        # (9) reveal: the participant now sees the score and the rank
        page.get_by_role("button", name="Reveal the leaderboard").click()
        expect(page.locator("#visibility")).to_contain_text("revealed at")
        visitor.goto(phase.get_absolute_url())
        board = visitor.locator("#leaderboard tbody tr")
        expect(board).to_have_count(1)
        expect(board.first).to_contain_text("runner")
        expect(board.first).to_contain_text(expected)
        visitor.goto(submission.get_absolute_url())
        expect(visitor.locator("#rank")).to_have_text("1")
        assert_accessible(visitor)
    finally:
        context.close()

    actions = set(AuditEvent.objects.filter(challenge=challenge).values_list("action", flat=True))
    assert {"challenge.import", "phase.update", "registration.approve", "submission.hide", "submission.restore",
            "leaderboard.reveal"} <= actions
