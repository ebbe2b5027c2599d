"""Notifications (issue 13 item 5) through a real SMTP server (aiosmtpd on 127.0.0.1): every kind is stored on the
site and mailed to a verified address with a working one-click unsubscribe link; a mail server that is down makes
the task retry and then record the error, and the notification stays."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client

from spinebench.accounts.email_links import mark_verified
from spinebench.challenges.models import Registration
from spinebench.notifications.kinds import Kind
from spinebench.notifications.models import EmailPreference, Notification
from spinebench.notifications.tasks import MAX_RETRIES, send_notification_email
from spinebench.submissions.services import create_submission

from .aasce_data import HIDDEN_ANGLES
from .conftest import csv_upload
from .factories import ChallengeFactory, RegistrationFactory, UserFactory
from .smtp_server import SmtpServer, body

pytestmark = pytest.mark.django_db
GOOD = {"case_a": (30.0, 25.0, 15.0), "case_b": (17.0, 20.0, 12.0), "case_c": (26.0, 21.0, 10.0)}
BAD_LINE = "line 3: pt 'x' is not a number"
BAD_CSV = b"case_id,pt,mt,tl\ncase_a,1,2,3\ncase_b,x,2,3\ncase_c,1,2,3\n"


@pytest.fixture
def smtp(settings):
    server = SmtpServer()
    server.start()
    server.configure(settings)
    settings.SPINEBENCH_SITE_URL = "http://testserver"
    yield server
    server.stop()


@pytest.fixture
def verified(participant):
    mark_verified(user=participant, email=participant.email)
    return participant


def submit(phase, user, upload, capture):
    with capture(execute=True):
        submission = create_submission(phase=phase, user=user, upload=upload)
    submission.refresh_from_db()
    return submission


def unsubscribe_path(text: str) -> str:
    match = re.search(r"Unsubscribe from these mails with one click: (\S+)", text)
    assert match, text
    return urlsplit(match.group(1)).path


def test_failed_submission_notifies_on_site_and_by_mail_with_a_working_unsubscribe(
    smtp, phase, verified, eager_tasks, django_capture_on_commit_callbacks
):
    submission = submit(phase, verified, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    [note] = Notification.objects.filter(user=verified)
    assert note.kind == Kind.SUBMISSION_FAILED and BAD_LINE in note.body
    assert note.link == f"/submissions/{submission.pk}/"
    assert note.emailed_at is not None and note.email_error == ""
    [mail] = smtp.inbox.to(verified.email)
    text = body(mail)
    assert mail["Subject"] == f"SpineBench: Submission {submission.pk} failed"
    assert BAD_LINE in text and f"http://testserver/submissions/{submission.pk}/" in text
    for angles in HIDDEN_ANGLES.values():  # hidden ground truth never reaches the mail
        assert all(str(value) not in text for value in angles)
    path = unsubscribe_path(text)
    assert str(mail["List-Unsubscribe"]).strip() == f"<http://testserver{path}>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    anonymous = Client(enforce_csrf_checks=True)  # a mail client's one-click POST: no session, no CSRF token
    assert "Stop mail for" in anonymous.get(path).content.decode()
    assert not EmailPreference.objects.exists()  # a GET (link scanner) changes nothing
    done = anonymous.post(path)
    assert done.status_code == 200 and "Unsubscribed" in done.content.decode()
    assert EmailPreference.objects.filter(user=verified, kind=Kind.SUBMISSION_FAILED).exists()

    # Unsubscribed from failures: the next failure is on the site only; a success still comes by mail.
    submit(phase, verified, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    assert Notification.objects.filter(user=verified, kind=Kind.SUBMISSION_FAILED).count() == 2
    assert len(smtp.inbox.to(verified.email)) == 1
    good = submit(phase, verified, csv_upload(GOOD), django_capture_on_commit_callbacks)
    assert good.status == "succeeded"
    finished = Notification.objects.get(user=verified, kind=Kind.SUBMISSION_SUCCEEDED)
    assert finished.title == f"Submission {good.pk} finished" and finished.emailed_at is not None
    assert smtp.inbox.to(verified.email)[-1]["Subject"] == f"SpineBench: Submission {good.pk} finished"


def test_unverified_address_gets_no_mail_but_the_notification(
    smtp, phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    submit(phase, participant, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    assert Notification.objects.filter(user=participant, kind=Kind.SUBMISSION_FAILED).count() == 1
    assert smtp.inbox.messages == []


@pytest.fixture
def eager_retries():
    """Embedded mode's own setting (base.py): an eager task's Retry is followed in-process (countdown skipped)
    instead of being raised to the caller, as the test settings otherwise do."""
    from spinebench.celery import app

    previous = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = previous


def test_server_down_retries_then_records_the_error_and_keeps_the_notification(
    smtp, phase, verified, eager_tasks, eager_retries, django_capture_on_commit_callbacks, monkeypatch
):
    from django.core.mail.backends.smtp import EmailBackend

    smtp.stop()
    tries = []

    real_open = EmailBackend.open

    def counting_open(self):
        tries.append(1)
        return real_open(self)

    monkeypatch.setattr(EmailBackend, "open", counting_open)
    submission = submit(phase, verified, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    assert submission.status == "failed"  # the scoring outcome is untouched by the mail failure
    [note] = Notification.objects.filter(user=verified)
    assert len(tries) == MAX_RETRIES + 1
    assert note.emailed_at is None
    assert note.email_error.startswith(f"try {MAX_RETRIES + 1} of {MAX_RETRIES + 1}: ConnectionRefusedError")

    smtp.start()  # the server is back: sending the stored notification again works and clears the error
    send_notification_email.delay(notification_pk=note.pk)
    note.refresh_from_db()
    assert note.emailed_at is not None and note.email_error == ""
    assert len(smtp.inbox.to(verified.email)) == 1
    send_notification_email.delay(notification_pk=note.pk)  # a second delivery sends nothing twice
    assert len(smtp.inbox.to(verified.email)) == 1


def test_task_options_route_to_scoring_with_backoff():
    assert send_notification_email.max_retries == MAX_RETRIES and send_notification_email.retry_backoff
    from spinebench.celery import app

    assert app.amqp.router.route({}, send_notification_email.name)["queue"].name == "scoring"


@pytest.mark.parametrize(
    ("decision", "kind", "words"),
    [("approve", Kind.REGISTRATION_APPROVED, "approved"), ("reject", Kind.REGISTRATION_REJECTED, "rejected")],
)
def test_registration_decision_notifies(smtp, django_capture_on_commit_callbacks, eager_tasks, decision, kind, words):
    organizer = UserFactory()
    challenge = ChallengeFactory(organizers=[organizer])
    applicant = UserFactory()
    mark_verified(user=applicant, email=applicant.email)
    registration = RegistrationFactory(challenge=challenge, user=applicant, status=Registration.Status.PENDING)
    assert not Notification.objects.exists()  # a new registration is no news
    client = Client()
    client.force_login(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/challenges/{challenge.slug}/registrations/{registration.pk}/{decision}/")
    assert response.status_code == 302, response
    [note] = Notification.objects.filter(user=applicant)
    assert note.kind == kind and note.title == f"Registration for {challenge.title} {words}"
    [mail] = smtp.inbox.to(applicant.email)
    assert mail["Subject"] == f"SpineBench: {note.title}" and "one click" in body(mail)


def test_status_saves_without_a_change_do_not_notify(
    phase, participant, eager_tasks, django_capture_on_commit_callbacks
):
    submission = submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    assert Notification.objects.filter(user=participant).count() == 1
    submission.comment = "edited"
    submission.save()
    submission.save(update_fields=["status"])
    assert Notification.objects.filter(user=participant).count() == 1


def test_notification_page_lists_and_marks_read(
    phase, participant, other_user, eager_tasks, django_capture_on_commit_callbacks
):
    submit(phase, participant, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    first, second = Notification.objects.filter(user=participant).order_by("pk")
    client = Client()
    client.force_login(participant)
    page = client.get("/notifications/").content.decode()
    assert (
        "2 unread" in page
        and 'Notifications <span class="badge text-bg-light">2<span class="visually-hidden"> unread</span></span>'
        in page
    )  # header count and BAD_LINE.replace("'", "&#x27;") in page
    client.post("/notifications/read/", {"pk": first.pk})
    first.refresh_from_db(), second.refresh_from_db()
    assert first.read_at is not None and second.read_at is None
    stranger = Client()
    stranger.force_login(other_user)
    assert "No notifications yet" in stranger.get("/notifications/").content.decode()
    stranger.post("/notifications/read/", {"pk": second.pk})  # someone else's: nothing happens
    second.refresh_from_db()
    assert second.read_at is None
    client.post("/notifications/read/")
    assert not Notification.objects.filter(user=participant, read_at__isnull=True).exists()
    assert Client().get("/notifications/").status_code == 302  # login required


def test_preferences_page_switches_kinds(participant):
    client = Client()
    client.force_login(participant)
    client.post("/notifications/preferences/", {"kinds": [Kind.SUBMISSION_FAILED, Kind.REGISTRATION_APPROVED]})
    muted = set(EmailPreference.objects.filter(user=participant).values_list("kind", flat=True))
    assert muted == set(Kind.values) - {Kind.SUBMISSION_FAILED, Kind.REGISTRATION_APPROVED}
    assert {Kind.SUBMISSION_SUCCEEDED, Kind.REGISTRATION_REJECTED} <= muted
    assert Client().post("/notifications/unsubscribe/not-a-token/").status_code == 400


def test_broker_down_keeps_the_notification_and_records_why(
    phase, verified, eager_tasks, django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(**kwargs):
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(send_notification_email, "delay", broker_down)
    submission = submit(phase, verified, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    assert submission.status == "failed"
    [note] = Notification.objects.filter(user=verified)
    assert note.emailed_at is None and note.email_error.startswith("mail task not started: ")


def test_notification_api_lists_own_and_marks_read(
    phase, participant, other_user, eager_tasks, django_capture_on_commit_callbacks
):
    from rest_framework.test import APIClient

    submit(phase, participant, csv_upload(content=BAD_CSV), django_capture_on_commit_callbacks)
    submit(phase, participant, csv_upload(GOOD), django_capture_on_commit_callbacks)
    failed = Notification.objects.get(user=participant, kind=Kind.SUBMISSION_FAILED)
    api = APIClient()
    assert api.get("/api/notifications/").status_code in (401, 403)
    api.force_authenticate(participant)
    listed = api.get("/api/notifications/").json()
    rows = listed["results"] if isinstance(listed, dict) else listed
    assert [row["kind"] for row in rows] == [Kind.SUBMISSION_SUCCEEDED, Kind.SUBMISSION_FAILED]
    assert BAD_LINE in rows[1]["body"] and "email_error" not in rows[1]
    assert api.post(f"/api/notifications/{failed.pk}/read/").json() == {"marked_read": 1}
    unread = api.get("/api/notifications/?unread=1").json()
    assert [row["kind"] for row in (unread["results"] if isinstance(unread, dict) else unread)] == [
        Kind.SUBMISSION_SUCCEEDED
    ]
    outsider = APIClient()
    outsider.force_authenticate(other_user)
    assert outsider.post(f"/api/notifications/{failed.pk}/read/").status_code == 404
    assert outsider.get("/api/notifications/").json() in (
        [],
        {"count": 0, "next": None, "previous": None, "results": []},
    )
    assert api.post("/api/notifications/read-all/").json() == {"marked_read": 1}
    assert b"/api/notifications/read-all/" in APIClient().get("/api/schema/").content
