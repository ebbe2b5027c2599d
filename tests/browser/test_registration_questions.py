"""Registration questions and announcements in a real browser: an organizer adds a required question; a participant
who leaves it empty is refused with the reason under the question, then registers answering it; the organizer
approves the registration and sees the answer; the organizer posts an announcement that appears on the challenge
page. axe-core on each new page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from spinebench.challenges.models import Registration
from tests.platform.factories import ChallengeFactory, UserFactory

from .conftest import DESKTOP, assert_accessible
from .test_organizer_console import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_question_answered_approved_and_announcement_posted(page, browser, live_server):
    organizer = UserFactory(username="host")
    challenge = ChallengeFactory(title="Lumbar Challenge", slug="lumbar", organizers=[organizer],
                                 registration_mode="approval")
    log_in(page, organizer)
    page.goto(f"/challenges/{challenge.slug}/manage/registrations/")
    page.get_by_role("link", name="Registration questions").click()
    assert_accessible(page)
    page.locator("#id_label").fill("Your institution")
    page.locator("#id_kind").select_option("text")
    page.locator("#id_required").check()
    page.get_by_role("button", name="Add the question").click()
    expect(page.locator("#question-table")).to_contain_text("Your institution")
    question = challenge.registration_questions.get()
    assert question.required

    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(15_000)
    visitor = context.new_page()
    participant = UserFactory(username="runner")
    log_in(visitor, participant)
    visitor.goto(f"/challenges/{challenge.slug}/")
    join = visitor.locator("#registration-form")
    expect(join).to_contain_text("Your institution")
    assert_accessible(visitor)
    join.get_by_role("button", name="Join Lumbar Challenge").click()
    expect(visitor.get_by_role("heading", name="Join Lumbar Challenge")).to_be_visible()
    expect(visitor.locator(f"#error_1_id_{question.field_name}")).to_contain_text("This field is required")
    assert not Registration.objects.filter(user=participant).exists()
    assert_accessible(visitor)
    visitor.get_by_label("Your institution").fill("Spine Institute Basel")
    visitor.get_by_role("button", name="Join the challenge").click()
    expect(visitor.locator("#join")).to_be_visible()
    expect(visitor.get_by_text("Your registration is waiting for approval.")).to_be_visible()
    registration = Registration.objects.get(user=participant)
    assert registration.answers.get().value == "Spine Institute Basel"

    page.goto(f"/challenges/{challenge.slug}/manage/registrations/")
    table = page.locator("#registration-table")
    expect(table).to_contain_text("Your institution")
    expect(table).to_contain_text("Spine Institute Basel")
    page.get_by_label("Select runner").check()
    page.get_by_role("button", name="Approve selected").click()
    expect(table).to_contain_text("approved")
    registration.refresh_from_db()
    assert registration.status == Registration.Status.APPROVED

    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Announcements").click()
    assert_accessible(page)
    page.locator("#id_title").fill("Test phase opens Monday")
    page.locator("#id_body").fill("Upload your predictions from **Monday** on.")
    page.get_by_role("button", name="Post").click()
    expect(page.locator("#announcement-table")).to_contain_text("Test phase opens Monday")

    visitor.goto(f"/challenges/{challenge.slug}/")
    news = visitor.locator("#news")
    expect(news).to_contain_text("Test phase opens Monday")
    expect(news.locator("strong")).to_have_text("Monday")
    assert_accessible(visitor)
    context.close()
