"""The reminder a day before a phase closes: every approved participant of the challenge gets one notification per
phase (on the site, and by mail where they want that kind), made by a periodic task (beat). A phase qualifies while
it is open, public (in a public challenge) and closes within REMINDER_HOURS; the PhaseReminder row, created in the
same transaction as the notification, makes it once per user and phase."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from spinebench.challenges.models import Phase, Registration

from .kinds import Kind
from .models import PhaseReminder
from .services import notify

REMINDER_HOURS = 24


def closing_phases(*, now: datetime):
    """Public, open phases of public challenges that close within REMINDER_HOURS of `now`."""
    return (
        Phase.objects.select_related("challenge")
        .filter(
            is_public=True,
            challenge__is_public=True,
            closes_at__gt=now,
            closes_at__lte=now + timedelta(hours=REMINDER_HOURS),
        )
        .filter(Q(opens_at__isnull=True) | Q(opens_at__lte=now))
    )


def send_closing_reminders(*, now: datetime | None = None) -> int:
    """Make the closing reminders due at `now` that were not made yet; returns how many were made."""
    now = now or timezone.now()
    made = 0
    for phase in closing_phases(now=now):
        participants = Registration.objects.filter(
            challenge=phase.challenge, status=Registration.Status.APPROVED
        ).exclude(user__phase_reminders__phase=phase).select_related("user")
        for registration in participants:
            made += _remind(phase=phase, user=registration.user, now=now)
    return made


def _remind(*, phase: Phase, user, now: datetime) -> int:
    assert phase.closes_at is not None  # closing_phases() selects phases with a closing time
    try:
        with transaction.atomic():
            PhaseReminder.objects.create(user=user, phase=phase, created=now)
            left = phase.closes_at - now
            hours = max(1, round(left.total_seconds() / 3600))
            closes = timezone.localtime(phase.closes_at).strftime("%Y-%m-%d %H:%M %Z")
            notify(
                user=user, kind=Kind.PHASE_CLOSING, link=phase.get_absolute_url(),
                title=f"{phase.title} of {phase.challenge.title} closes in about {hours} hours",
                body=f"Phase {phase.title} of {phase.challenge.title} accepts submissions until {closes} "
                f"(in about {hours} hours).",
            )
    except IntegrityError:  # another run made it first
        return 0
    return 1
