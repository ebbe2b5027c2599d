"""A new participant's whole journey in a real browser, with every mail going through a real SMTP server (aiosmtpd on
127.0.0.1) and read from what arrived: sign up -> follow the verification link of the mail -> join the challenge ->
create a team -> invite a second user, who accepts (the leader gets the notice, on the site and by mail) -> submit a
CSV with a method card -> the dashboard shows the submission go from queued to succeeded without a reload -> the
result mail arrives; the leaderboard shows the team's entry with its method card, and its history page the entry's
rank over time."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from spinebench.accounts.email_links import mark_verified
from spinebench.submissions import services as submission_services
from spinebench.submissions.models import Submission
from spinebench.submissions.tasks import score_submission
from tests.conftest import wait_for
from tests.platform.aasce_data import HIDDEN_ANGLES, predictions_csv
from tests.platform.factories import ChallengeFactory, PhaseFactory, RegistrationFactory
from tests.platform.smtp_server import SmtpServer, body

from .conftest import assert_accessible
from .test_teams_dashboard import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
NEAR = {case: (a + 1.0, b + 1.0, c + 1.0) for case, (a, b, c) in HIDDEN_ANGLES.items()}
EMAIL = "vera@example.org"


@pytest.fixture
def smtp(settings, live_server):
    from django.core.cache import cache

    cache.clear()  # the hourly count of link mails per account lives in the cache
    server = SmtpServer()
    server.start()
    server.configure(settings)
    settings.SPINEBENCH_SITE_URL = live_server.url  # notification mails carry absolute links to this site
    yield server
    server.stop()
    cache.clear()


def mail_to(smtp, address: str, subject: str):
    """The one mail to `address` with this subject, waiting for it to arrive."""
    found = wait_for(lambda: [m for m in smtp.inbox.to(address) if m["Subject"] == subject], timeout=20,
                     what=f"the mail {subject!r} to {address}")
    assert len(found) == 1, [m["Subject"] for m in smtp.inbox.messages]
    return found[0]


def test_sign_up_verify_team_invite_submit_with_a_card_and_get_the_result_mail(
    browser, live_server, smtp, eager_tasks, monkeypatch
):
    challenge = ChallengeFactory(slug="aasce-journey", title="AASCE journey")
    phase = PhaseFactory(challenge=challenge, slug="test", title="Test", submission_limit=3)
    mate = RegistrationFactory(challenge=challenge, user__username="mate").user
    mark_verified(user=mate, email=mate.email)

    lead_context = browser.new_context(base_url=live_server.url)
    lead_context.set_default_timeout(15_000)
    lead = lead_context.new_page()
    lead.goto("/")
    lead.get_by_role("link", name="Sign up").click()
    lead.get_by_label("Username").fill("vera")
    lead.get_by_label("Email").fill(EMAIL)
    lead.locator("#id_password1").fill("a-Long-pass-9")
    lead.locator("#id_password2").fill("a-Long-pass-9")
    lead.get_by_role("button", name="Create account").click()
    expect(lead.locator("#user-menu")).to_have_text("vera")

    # The verification link, as the mail that arrived carries it.
    verification = mail_to(smtp, EMAIL, "SpineBench: verify your email address")
    [link] = [url for url in re.findall(r"https?://\S+", body(verification)) if "/accounts/verify/" in url]
    lead.goto(urlsplit(link).path)
    expect(lead).to_have_url(re.compile(r"/accounts/profile/$"))
    expect(lead.locator("body")).not_to_contain_text("Please verify your email address")

    lead.goto(challenge.get_absolute_url())
    lead.get_by_role("button", name="Join AASCE journey").click()
    expect(lead.get_by_role("status")).to_contain_text("You are registered for AASCE journey")
    lead.goto(f"/challenges/{challenge.slug}/teams/")
    lead.get_by_label("Team name").fill("Cobb Crew")
    lead.get_by_role("button", name="Create team").click()
    expect(lead.get_by_role("heading", name="Team Cobb Crew", level=1)).to_be_visible()
    lead.get_by_label("Username or email address").fill("mate")
    lead.get_by_role("button", name="Invite").click()
    expect(lead.locator("#pending-invitations")).to_contain_text("mate")
    mail_to(smtp, mate.email, "SpineBench: Invitation to team Cobb Crew of AASCE journey")

    mate_context = browser.new_context(base_url=live_server.url)
    mate_context.set_default_timeout(15_000)
    mate_page = mate_context.new_page()
    log_in(mate_page, mate)
    mate_page.goto("/dashboard/")
    mate_page.get_by_role("link", name="accept or decline").click()
    mate_page.locator("#my-invitations").get_by_role("button", name="Accept").click()
    expect(mate_page.locator("#members")).to_contain_text("vera")
    expect(mate_page.locator("#members")).to_contain_text("mate")

    # The leader hears of it: a mail, and the notification centre.
    notice = mail_to(smtp, EMAIL, "SpineBench: mate accepted the invitation to team Cobb Crew")
    assert "mate is now a member of team Cobb Crew" in body(notice)
    lead.goto("/notifications/")
    expect(lead.locator("main")).to_contain_text("mate accepted the invitation to team Cobb Crew")
    assert_accessible(lead)

    # The leader submits with a method card; the worker has not picked it up yet (the pipeline start is held).
    held: list[int] = []
    monkeypatch.setitem(submission_services._PIPELINES, "csv", held.append)
    lead.goto(phase.get_absolute_url())
    lead.get_by_role("link", name="Submit").first.click()
    lead.get_by_label("File").set_input_files(
        {"name": "predictions.csv", "mimeType": "text/csv", "buffer": predictions_csv(NEAR)}
    )
    lead.locator("#id_method_name").fill("CrewNet")
    lead.locator("#id_paper_url").fill("https://example.org/crewnet")
    lead.get_by_role("button", name="Submit").click()
    expect(lead.locator("#status")).to_have_text("queued")
    expect(lead.locator("#method-card")).to_contain_text("CrewNet")
    [pk] = held
    assert Submission.objects.get(pk=pk).team.name == "Cobb Crew"

    lead.goto("/dashboard/")
    status = lead.locator(f"#status-{pk}")
    expect(status).to_have_text("queued")
    lead.evaluate("window.sbNotReloaded = true")
    score_submission(submission_pk=pk)  # the worker scores it; the dashboard is not reloaded
    expect(status).to_have_text("succeeded", timeout=15_000)
    expect(lead.locator(f"#position-{pk}")).to_have_text("1")
    assert lead.evaluate("window.sbNotReloaded === true")

    result = mail_to(smtp, EMAIL, f"SpineBench: Submission {pk} finished")
    assert f"Your submission {pk} to AASCE journey / Test was scored." in body(result)
    assert not [m for m in smtp.inbox.to(mate.email) if "finished" in m["Subject"]]  # the submitter's mail only

    lead.goto(phase.get_absolute_url())
    row = lead.locator("#leaderboard tbody tr").first
    expect(row).to_contain_text("Cobb Crew")
    expect(row).to_contain_text("CrewNet")
    expect(row.get_by_role("link", name=re.compile("paper"))).to_have_attribute("href", "https://example.org/crewnet")

    # The leaderboard's history shows the team's entry: its rank over time (chart and table).
    lead.goto(f"/challenges/{challenge.slug}/phases/{phase.slug}/history/")
    changes = lead.locator("#history-table tbody tr")
    expect(changes).to_have_count(1)
    expect(changes.first.locator("td").nth(0)).to_contain_text("Cobb Crew")
    expect(changes.first.locator("td").nth(2)).to_have_text("1")
    expect(changes.first.get_by_role("link", name=f"#{pk}")).to_be_visible()
    expect(lead.locator("svg polyline")).to_have_count(1)
    lead_context.close()
    mate_context.close()
