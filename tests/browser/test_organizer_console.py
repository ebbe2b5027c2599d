"""The organizers' console in a real browser: a user without staff rights creates a challenge from the form (with the
live markdown preview), adds a phase, and approves a registration; axe-core on each console page."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from spinebench.challenges.models import Challenge, Registration
from tests.platform.factories import RegistrationFactory, UserFactory

from .conftest import assert_accessible

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name=user.username)).to_be_visible()


def test_create_a_challenge_add_a_phase_approve_a_registration(page, live_server):
    organizer = UserFactory(username="newcomer")
    log_in(page, organizer)
    page.goto("/manage/")
    assert_accessible(page)
    page.get_by_role("link", name="Create a challenge").click()
    page.locator("#id_title").fill("Sacrum Challenge")
    page.locator("#id_slug").fill("sacrum")
    page.locator("#id_summary").fill("Find the sacrum.")
    page.locator("#id_description").fill("Segment the **sacral** bone.")
    expect(page.locator("#preview strong")).to_have_text("sacral")  # htmx preview, raw HTML stripped server-side
    page.locator("#id_registration_mode").select_option("approval")
    assert_accessible(page)
    page.get_by_role("button", name="Create the challenge").click()
    expect(page.get_by_role("heading", name="Sacrum Challenge", level=1)).to_be_visible()
    challenge = Challenge.objects.get(slug="sacrum")
    assert list(challenge.organizers.all()) == [organizer]
    assert_accessible(page)

    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Phases").click()
    page.get_by_role("link", name="Add a phase").click()
    page.locator("#id_slug").fill("validation")
    page.locator("#id_title").fill("Validation")
    page.locator("#id_task").select_option("aasce-cobb")
    page.locator("#id_closes_at").fill("2020-01-01T00:00")
    page.locator("#id_opens_at").fill("2021-01-01T00:00")
    page.get_by_role("button", name="Save the phase").click()
    expect(page.locator("#error_1_id_closes_at, .invalid-feedback").first).to_contain_text("after opens_at")
    assert not challenge.phases.exists()
    page.locator("#id_closes_at").fill("2031-01-01T00:00")
    page.get_by_role("button", name="Save the phase").click()
    expect(page.locator("#phase-table")).to_contain_text("Validation")
    assert challenge.phases.get().slug == "validation"

    applicant = RegistrationFactory(challenge=challenge, user__username="applicant",
                                    status=Registration.Status.PENDING)
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Registrations").click()
    assert_accessible(page)
    page.get_by_label("Select applicant").check()
    page.get_by_label("Message (optional)").fill("Welcome.")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("#registration-table")).to_contain_text("approved")
    applicant.refresh_from_db()
    assert applicant.status == Registration.Status.APPROVED

    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Audit").click()
    table = page.locator("#audit-table")
    for action in ("challenge.create", "phase.create", "registration.approve"):
        expect(table).to_contain_text(action)
    assert_accessible(page)


def test_on_a_phone_the_console_row_shows_the_current_section(phone_context):
    """The console's sections are one sideways-scrolling row on a phone; a section at the row's far end (Audit) is
    scrolled into view, highlighted, on its own page."""
    from spinebench.challenges.models import Challenge

    organizer = UserFactory(username="pocket")
    challenge = RegistrationFactory().challenge
    Challenge.objects.get(pk=challenge.pk).organizers.add(organizer)
    page = phone_context.new_page()
    page.goto("/accounts/login/")  # the user menu hides behind the phone's menu button: look for the next page instead
    page.get_by_label("Username").fill(organizer.username)
    page.get_by_label("Password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page).not_to_have_url(re.compile(r"/accounts/login/"))
    page.goto(f"/challenges/{challenge.slug}/manage/audit/")
    current = page.get_by_role("navigation", name="Console sections").locator("a[aria-current=page]")
    expect(current).to_have_text("Audit")
    expect(current).to_be_in_viewport(ratio=0.95)
    page.goto(f"/challenges/{challenge.slug}/manage/")
    audit = page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Audit")
    expect(audit).not_to_be_in_viewport()  # the overview's row starts at its first pill
