"""Creating notifications and deciding whether they are mailed."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.utils import timezone

from spinebench.accounts.profiles import has_verified_email

from .kinds import Kind
from .models import EmailPreference, Notification

log = logging.getLogger(__name__)


def wants_email(*, user, kind: str) -> bool:
    """Mail goes only to a verified address and only for kinds the user has not switched off."""
    return has_verified_email(user) and not EmailPreference.objects.filter(user=user, kind=kind).exists()


def notify(*, user, kind: str, title: str, body: str = "", link: str = "") -> Notification:
    """Store the notification now; its mail is a task dispatched after the surrounding transaction commits, so a
    rolled-back change never mails and a slow or absent mail server never holds up the caller."""
    notification = Notification.objects.create(
        user=user, kind=Kind(kind), title=title[:200], body=body, link=link[:500]
    )
    if wants_email(user=user, kind=kind):
        transaction.on_commit(lambda: _dispatch(notification.pk))
    return notification


#: Starts the mail task of a notification; NotificationsConfig.ready() registers the Celery task here, so this service
#: never imports the task layer above it.
_mailer: Callable[[int], object] | None = None


def register_mailer(start: Callable[[int], object]) -> None:
    global _mailer
    _mailer = start


def _dispatch(notification_pk: int) -> None:
    try:
        if _mailer is None:
            raise RuntimeError("no mail task registered (spinebench.notifications is not ready)")
        _mailer(notification_pk)
    except Exception as error:  # a broker outage must not break the request; the row records it
        log.exception("notification %s: mail task not started", notification_pk)
        Notification.objects.filter(pk=notification_pk).update(email_error=f"mail task not started: {error}"[:2000])


def mark_read(*, user, pks=None) -> int:
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if pks is not None:
        unread = unread.filter(pk__in=pks)
    return unread.update(read_at=timezone.now())


def set_email_kinds(*, user, kinds_on) -> None:
    """Mail exactly the kinds in `kinds_on`; every other kind is muted."""
    kinds_on = set(kinds_on)
    EmailPreference.objects.filter(user=user, kind__in=kinds_on).delete()
    for kind in Kind.values:
        if kind not in kinds_on:
            EmailPreference.objects.get_or_create(user=user, kind=kind)


def mute(*, user_pk: int, kind: str) -> None:
    EmailPreference.objects.get_or_create(user_id=user_pk, kind=kind)
