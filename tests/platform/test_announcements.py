"""Announcements (issue 12 item 9, issue 13's announcement notifications): organizers post markdown news (console and
API, audited), shown on the challenge page newest first with raw HTML stripped and listed in the public API; a hidden
challenge's news stays with its organizers. "Notify participants" reaches the approved participants only, through a
real SMTP server (aiosmtpd on 127.0.0.1), honouring each one's opt-out, once."""

from __future__ import annotations

import pytest
from django.test import Client

from spinebench.accounts.email_links import mark_verified
from spinebench.challenges.models import Announcement, Registration
from spinebench.notifications.announcements import notify_participants
from spinebench.notifications.kinds import Kind
from spinebench.notifications.models import EmailPreference, Notification
from spinebench.organizers.announcements import post_announcement
from spinebench.organizers.models import AuditEvent

from .conftest import api
from .factories import ChallengeFactory, RegistrationFactory, UserFactory
from .smtp_server import SmtpServer, body

pytestmark = pytest.mark.django_db
HOSTILE = "Phase 2 opens **Monday**.\n\n<script>alert('x')</script><img src=x onerror=alert(1)>"


@pytest.fixture
def organizer(db):
    return UserFactory(username="host")


@pytest.fixture
def challenge(organizer):
    return ChallengeFactory(organizers=[organizer])


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    server.configure(settings)
    settings.SPINEBENCH_SITE_URL = "http://testserver"
    yield server
    server.stop()


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_console_post_shows_on_the_challenge_page_sanitised_newest_first(challenge, organizer):
    client = signed_in(organizer)
    manage = f"/challenges/{challenge.slug}/manage/announcements/"
    refused = client.post(manage, {"title": "", "body": "text"})
    assert refused.status_code == 400 and not Announcement.objects.exists()
    assert client.post(manage, {"title": "Welcome", "body": "First post."}).status_code == 302
    assert client.post(manage, {"title": "Phase 2", "body": HOSTILE}).status_code == 302
    page = Client().get(f"/challenges/{challenge.slug}/").content.decode()
    assert page.index("Phase 2") < page.index("Welcome")  # newest first
    assert "<strong>Monday</strong>" in page
    assert "<script>alert" not in page and "onerror" not in page
    event = AuditEvent.objects.filter(action="announcement.post").first()
    assert event.actor == organizer and event.changes["title"] == [None, "Phase 2"]
    assert Notification.objects.count() == 0  # not asked to notify


def test_many_announcements_page_and_list(challenge, organizer):
    for number in range(25):
        post_announcement(challenge=challenge, actor=organizer, data={"title": f"News {number:02d}", "body": "."})
    page = Client().get(f"/challenges/{challenge.slug}/").content.decode()
    assert "News 24" in page and "News 22" in page and "News 21" not in page and "All 25 announcements" in page
    first = Client().get(f"/challenges/{challenge.slug}/announcements/").content.decode()
    assert "News 24" in first and "News 05" in first and "News 04" not in first and "Page 1 of 2" in first
    second = Client().get(f"/challenges/{challenge.slug}/announcements/?page=2").content.decode()
    assert "News 04" in second and "News 00" in second and "News 05" not in second


def test_public_api_lists_and_hidden_challenge_keeps_its_news(challenge, organizer):
    post_announcement(challenge=challenge, actor=organizer, data={"title": "Open news", "body": HOSTILE})
    hidden = ChallengeFactory(is_public=False, organizers=[organizer])
    post_announcement(challenge=hidden, actor=organizer, data={"title": "Secret news", "body": "embargo"})
    [item] = api().get(f"/api/challenges/{challenge.slug}/announcements/").json()
    assert item["title"] == "Open news" and item["body"] == HOSTILE
    assert "<strong>Monday</strong>" in item["body_html"] and "<script" not in item["body_html"]
    for client in (api(), api(UserFactory())):
        assert client.get(f"/api/challenges/{hidden.slug}/announcements/").status_code == 404
    assert Client().get(f"/challenges/{hidden.slug}/announcements/").status_code == 404
    assert "Secret news" not in Client().get("/challenges/").content.decode()
    assert [a["title"] for a in api(organizer).get(f"/api/challenges/{hidden.slug}/announcements/").json()] == [
        "Secret news"]


def test_organizer_api_create_edit_delete(challenge, organizer):
    client = api(organizer)
    base = f"/api/organizers/challenges/{challenge.slug}/announcements/"
    refused = client.post(base, {"title": "  ", "body": "x"}, format="json")
    assert refused.status_code == 400 and "title" in refused.json()
    created = client.post(base, {"title": "Deadline", "body": "Friday"}, format="json")
    assert created.status_code == 201 and created.json()["author"] == "host"
    pk = created.json()["id"]
    edited = client.patch(f"/api/organizers/announcements/{pk}/", {"body": "Saturday"}, format="json")
    assert edited.status_code == 200 and edited.json()["body"] == "Saturday"
    # Whether participants are told is chosen when posting: an edit that asks for it is refused, not ignored.
    renotify = client.patch(f"/api/organizers/announcements/{pk}/", {"email_participants": True, "body": "Sunday"},
                            format="json")
    assert renotify.status_code == 400 and list(renotify.json()) == ["email_participants"]
    assert Announcement.objects.get(pk=pk).body == "Saturday"
    assert api(UserFactory()).patch(f"/api/organizers/announcements/{pk}/", {"body": "hacked"},
                                    format="json").status_code == 404
    assert api(UserFactory()).post(base, {"title": "x", "body": "y"}, format="json").status_code == 404
    assert client.delete(f"/api/organizers/announcements/{pk}/").status_code == 204
    assert not Announcement.objects.exists()
    assert list(AuditEvent.objects.order_by("pk").values_list("action", flat=True)) == [
        "announcement.post", "announcement.update", "announcement.delete"]
    assert AuditEvent.objects.get(action="announcement.update").changes == {"body": ["Friday", "Saturday"]}


def test_notify_reaches_approved_participants_only_and_honours_opt_out(
    smtp, challenge, organizer, eager_tasks, django_capture_on_commit_callbacks
):
    people = {}
    for name, status in (("approved", "approved"), ("muted", "approved"), ("pending", "pending"),
                         ("rejected", "rejected"), ("outsider", None)):
        user = UserFactory(username=name)
        mark_verified(user=user, email=user.email)
        if status:
            RegistrationFactory(challenge=challenge, user=user, status=status)
        people[name] = user
    EmailPreference.objects.create(user=people["muted"], kind=Kind.ANNOUNCEMENT)
    other = ChallengeFactory()
    RegistrationFactory(challenge=other, user=people["outsider"])  # a participant elsewhere only
    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(organizer).post(f"/challenges/{challenge.slug}/manage/announcements/", {
            "title": "Test set released", "body": "Download it from the **Data** tab.", "email_participants": "on"})
    assert response.status_code == 302
    announcement = Announcement.objects.get()
    assert announcement.notified_at is not None
    notified = set(Notification.objects.filter(kind=Kind.ANNOUNCEMENT).values_list("user__username", flat=True))
    assert notified == {"approved", "muted"}  # the on-site notice is for every approved participant
    assert [m["To"] for m in smtp.inbox.messages] == [people["approved"].email]  # mail respects the opt-out
    [mail] = smtp.inbox.messages
    assert mail["Subject"] == f"SpineBench: {challenge.title}: Test set released"
    text = body(mail)
    assert "Download it from the **Data** tab." in text and f"/challenges/{challenge.slug}/announcements/" in text
    assert mail["List-Unsubscribe"]
    # A second delivery of the task notifies nobody again.
    assert notify_participants(announcement_pk=announcement.pk) == 0
    assert Notification.objects.filter(kind=Kind.ANNOUNCEMENT).count() == 2 and len(smtp.inbox.messages) == 1


def test_without_notify_and_on_edit_nobody_is_told(smtp, challenge, organizer, eager_tasks,
                                                  django_capture_on_commit_callbacks):
    user = UserFactory()
    mark_verified(user=user, email=user.email)
    RegistrationFactory(challenge=challenge, user=user, status=Registration.Status.APPROVED)
    with django_capture_on_commit_callbacks(execute=True):
        announcement = post_announcement(challenge=challenge, actor=organizer, data={"title": "Quiet", "body": "."})
        signed_in(organizer).post(f"/challenges/{challenge.slug}/manage/announcements/{announcement.pk}/",
                                  {"title": "Quiet, edited", "body": "."})
    announcement.refresh_from_db()
    assert announcement.title == "Quiet, edited" and announcement.notified_at is None
    assert not Notification.objects.exists() and smtp.inbox.messages == []


def test_a_hidden_challenge_notifies_only_the_participants_who_may_see_it(
    smtp, organizer, eager_tasks, django_capture_on_commit_callbacks
):
    hidden = ChallengeFactory(is_public=False, organizers=[organizer])
    participant, co_host = UserFactory(username="participant"), UserFactory(username="cohost")
    hidden.organizers.add(co_host)
    for user in (participant, co_host):
        mark_verified(user=user, email=user.email)
        RegistrationFactory(challenge=hidden, user=user)
    with django_capture_on_commit_callbacks(execute=True):
        post_announcement(challenge=hidden, actor=organizer, data={"title": "Dry run", "body": "."},
                          email_participants=True)
    assert list(Notification.objects.values_list("user__username", flat=True)) == ["cohost"]
    assert [m["To"] for m in smtp.inbox.messages] == [co_host.email]
