"""Teams and the dashboard in a real browser (issue 13): a leader creates a team and invites a participant by email,
the participant accepts from their dashboard's invitation, submits, and watches the submission go from queued to
succeeded on the dashboard without reloading it (htmx polling), ranked as the team's entry; axe-core on each page."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from spinebench.accounts.email_links import mark_verified
from spinebench.submissions import services as submission_services
from spinebench.submissions.models import Submission
from spinebench.submissions.tasks import score_submission
from spinebench.teams.models import Team
from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv
from tests.platform.factories import ChallengeFactory, PhaseFactory, RegistrationFactory

from .conftest import assert_accessible

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}


def log_in(page, user) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.locator("#id_password").fill("correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#user-menu")).to_have_text(user.username)


def test_create_team_invite_accept_submit_and_watch_it_live_on_the_dashboard(
    browser, live_server, eager_tasks, monkeypatch
):
    challenge = ChallengeFactory(slug="aasce-teams", title="AASCE teams")
    phase = PhaseFactory(challenge=challenge, slug="test", title="Test", submission_limit=3)
    lead = RegistrationFactory(challenge=challenge, user__username="lead").user
    mate = RegistrationFactory(challenge=challenge, user__username="mate").user
    for user in (lead, mate):
        mark_verified(user=user, email=user.email)

    leader_context = browser.new_context(base_url=live_server.url)
    leader = leader_context.new_page()
    log_in(leader, lead)
    leader.goto(f"/challenges/{challenge.slug}/teams/")
    assert_accessible(leader)
    leader.get_by_label("Team name").fill("Cobb Crew")
    leader.get_by_role("button", name="Create team").click()
    expect(leader.get_by_role("heading", name="Team Cobb Crew", level=1)).to_be_visible()
    leader.get_by_label("Username or email address").fill(mate.email)
    leader.get_by_role("button", name="Invite").click()
    expect(leader.locator("main")).to_contain_text("mate is invited.")
    expect(leader.locator("#pending-invitations")).to_contain_text("mate")
    assert_accessible(leader)

    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    log_in(page, mate)
    page.locator("#user-menu").click()
    page.get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    page.get_by_role("link", name="accept or decline").click()
    page.locator("#my-invitations").get_by_role("button", name="Accept").click()
    expect(page.locator("#members")).to_contain_text("lead")
    expect(page.locator("#members")).to_contain_text("mate")

    # The worker has not picked the upload up yet: the pipeline start is held, so the submission waits in `queued`.
    held: list[int] = []
    monkeypatch.setitem(submission_services._PIPELINES, "csv", held.append)
    page.goto(phase.get_absolute_url())
    page.get_by_role("link", name="Submit").first.click()
    page.get_by_label("File").set_input_files(
        {"name": "predictions.csv", "mimeType": "text/csv", "buffer": predictions_csv(NEAR)}
    )
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_have_text("queued")
    [pk] = held
    assert Submission.objects.get(pk=pk).team == Team.objects.get(name="Cobb Crew")

    page.goto("/dashboard/")
    status = page.locator(f"#status-{pk}")
    expect(status).to_have_text("queued")
    expect(page.locator("#my-challenges")).to_contain_text("Cobb Crew")
    assert_accessible(page)
    page.evaluate("window.sbNotReloaded = true")
    score_submission(submission_pk=pk)  # the worker scores it; the page is not reloaded
    expect(status).to_have_text("succeeded", timeout=15_000)
    expect(page.locator(f"#position-{pk}")).to_have_text("1")
    expect(page.locator("#my-submissions")).not_to_have_attribute("hx-trigger", "every 3s")  # all final: no polling
    assert page.evaluate("window.sbNotReloaded === true")
    leader_context.close()
    context.close()
