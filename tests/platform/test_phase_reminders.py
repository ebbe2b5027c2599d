"""The 24 h reminder before a phase closes (issue 13 item 5): a beat task notifies each approved participant once per
phase, on the site and by mail through a real SMTP server (aiosmtpd), respecting the mail preferences and the
one-click unsubscribe; hidden, closed, far-off and not-yet-open phases remind nobody."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from spinebench.accounts.email_links import mark_verified
from spinebench.challenges.models import Registration
from spinebench.notifications.kinds import Kind
from spinebench.notifications.models import EmailPreference, Notification, PhaseReminder
from spinebench.notifications.reminders import send_closing_reminders
from spinebench.notifications.tasks import send_phase_closing_reminders

from .factories import PhaseFactory, RegistrationFactory
from .smtp_server import body
from .test_notifications import smtp, unsubscribe_path  # noqa: F401 - smtp: the fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def closing(db):
    """A phase closing in 20 hours with two verified participants, one pending applicant and one who muted it."""
    now = timezone.now()
    phase = PhaseFactory(closes_at=now + timedelta(hours=20), opens_at=now - timedelta(days=3))
    people = {}
    for name in ("ana", "ben", "muted"):
        user = RegistrationFactory(challenge=phase.challenge).user
        mark_verified(user=user, email=user.email)
        people[name] = user
    EmailPreference.objects.create(user=people["muted"], kind=Kind.PHASE_CLOSING)
    people["pending"] = RegistrationFactory(challenge=phase.challenge, status=Registration.Status.PENDING).user
    return phase, people


def test_beat_schedules_the_reminder_task():
    entry = settings.CELERY_BEAT_SCHEDULE["phase-closing-reminders"]
    assert entry["task"] == send_phase_closing_reminders.name and entry["schedule"] <= 3600


def test_participants_are_reminded_once_by_site_and_mail(
    smtp, closing, eager_tasks, django_capture_on_commit_callbacks  # noqa: F811
):
    phase, people = closing
    with django_capture_on_commit_callbacks(execute=True):
        assert send_phase_closing_reminders.delay().get() == 3
    for name in ("ana", "ben", "muted"):
        [note] = Notification.objects.filter(user=people[name])
        assert note.kind == Kind.PHASE_CLOSING and note.link == phase.get_absolute_url()
        assert phase.title in note.title and "closes in about 20 hours" in note.title
    assert not Notification.objects.filter(user=people["pending"]).exists()
    assert sorted(m["To"] for m in smtp.inbox.messages) == sorted([people["ana"].email, people["ben"].email])
    [mail] = smtp.inbox.to(people["ana"].email)
    assert "closes in about 20 hours" in mail["Subject"]
    assert f"http://testserver{phase.get_absolute_url()}" in body(mail)

    # Beat runs again (and again): nobody is reminded twice.
    with django_capture_on_commit_callbacks(execute=True):
        assert send_closing_reminders() == 0
        assert send_closing_reminders(now=timezone.now() + timedelta(hours=10)) == 0
    assert Notification.objects.filter(kind=Kind.PHASE_CLOSING).count() == 3 and len(smtp.inbox.messages) == 2

    # The mail's one-click unsubscribe mutes the reminders of later phases for mail (the site keeps them).
    Client(enforce_csrf_checks=True).post(unsubscribe_path(body(mail)))
    assert EmailPreference.objects.filter(user=people["ana"], kind=Kind.PHASE_CLOSING).exists()
    later = PhaseFactory(challenge=phase.challenge, closes_at=timezone.now() + timedelta(hours=5))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_closing_reminders() == 3
    assert Notification.objects.filter(user=people["ana"], link=later.get_absolute_url()).exists()
    assert [m["To"] for m in smtp.inbox.messages[2:]] == [people["ben"].email]


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"closes_at": 30}, "closes in more than a day"),
        ({"closes_at": -1}, "already closed"),
        ({"closes_at": 5, "is_public": False}, "hidden phase"),
        ({"closes_at": 5, "opens_at": 2}, "not open yet"),
        ({"closes_at": None}, "never closes"),
    ],
)
def test_phases_that_do_not_qualify_remind_nobody(fields, why, eager_tasks, django_capture_on_commit_callbacks):
    now = timezone.now()
    hours = {key: (now + timedelta(hours=value) if value is not None else None)
             for key, value in fields.items() if key in ("closes_at", "opens_at")}
    phase = PhaseFactory(**{**fields, **hours})
    RegistrationFactory(challenge=phase.challenge)
    with django_capture_on_commit_callbacks(execute=True):
        assert send_closing_reminders(now=now) == 0, why
    assert not PhaseReminder.objects.exists() and not Notification.objects.exists()


def test_a_hidden_challenge_reminds_nobody(eager_tasks, django_capture_on_commit_callbacks):
    phase = PhaseFactory(closes_at=timezone.now() + timedelta(hours=3))
    phase.challenge.is_public = False
    phase.challenge.save()
    RegistrationFactory(challenge=phase.challenge)
    assert send_closing_reminders() == 0
