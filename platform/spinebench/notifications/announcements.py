"""Announcements to a challenge's participants: the organizers' service asks for them after the announcement is
stored; a Celery task (tasks.send_announcement, registered here at app-ready time so this module never imports the
task layer) makes one notification per approved participant, each mailed as the user's preferences allow."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from spinebench.challenges.models import Announcement, Registration

from .kinds import Kind
from .services import notify

log = logging.getLogger(__name__)

_starter: Callable[[int], object] | None = None


def register_announcement_starter(start: Callable[[int], object]) -> None:
    global _starter
    _starter = start


def announce_later(announcement: Announcement) -> None:
    """Start the notifying task once the surrounding transaction commits (never inside the request's work)."""
    pk = announcement.pk

    def start() -> None:
        if _starter is None:
            log.error("announcement %s: no task registered (spinebench.notifications is not ready)", pk)
            return
        try:
            _starter(pk)
        except Exception:  # a broker outage must not break the organizer's request; the row shows notified_at empty
            log.exception("announcement %s: notifying task not started", pk)

    transaction.on_commit(start)


def recipients(announcement: Announcement):
    """The challenge's approved participants (not pending, rejected or outsiders), active accounts only; while the
    challenge is hidden, only those of them who organize it (the others may not see the challenge or its news)."""
    challenge = announcement.challenge
    approved = Registration.objects.filter(challenge=challenge, status=Registration.Status.APPROVED).values("user_id")
    users = get_user_model().objects.filter(pk__in=approved, is_active=True)
    if not challenge.is_public:
        users = users.filter(pk__in=challenge.organizers.values("pk"))
    return users.order_by("pk")


@transaction.atomic
def notify_participants(*, announcement_pk: int) -> int:
    """Notify every recipient once: the announcement row lock and `notified_at` make a second run do nothing.
    Answers how many were notified."""
    announcement = (
        Announcement.objects.select_for_update().select_related("challenge").filter(pk=announcement_pk).first()
    )
    if announcement is None or not announcement.email_participants or announcement.notified_at is not None:
        return 0
    challenge = announcement.challenge
    link = reverse("challenges:announcements", kwargs={"slug": challenge.slug})
    count = 0
    for user in recipients(announcement):
        notify(
            user=user, kind=Kind.ANNOUNCEMENT, link=link,
            title=f"{challenge.title}: {announcement.title}",
            body=f"The organizers of {challenge.title} posted an announcement:\n\n{announcement.body}",
        )
        count += 1
    announcement.notified_at = timezone.now()
    announcement.save(update_fields=["notified_at"])
    return count
