"""Mailing a notification (queue `scoring`, by CELERY_TASK_ROUTES). The notification row exists before this runs; an
SMTP failure is
retried with exponential backoff, and after the last try the error is recorded on the row, which stays."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .announcements import notify_participants
from .models import Notification
from .reminders import send_closing_reminders
from .services import wants_email
from .unsubscribe import make_token

log = logging.getLogger(__name__)

MAIL_ERRORS = (smtplib.SMTPException, OSError)  # refused recipient, server down, timeout, TLS failure
MAX_RETRIES = 3


def absolute(path: str) -> str:
    return settings.SPINEBENCH_SITE_URL.rstrip("/") + path if path.startswith("/") else path


def build_message(notification: Notification) -> EmailMessage:
    unsubscribe = absolute(
        reverse(
            "notifications:unsubscribe",
            kwargs={"token": make_token(user_pk=notification.user_id, kind=notification.kind)},
        )
    )
    context = {
        "notification": notification,
        "user": notification.user,
        "link": absolute(notification.link) if notification.link else "",
        "unsubscribe": unsubscribe,
        "kind_label": notification.get_kind_display(),
        "preferences": absolute(reverse("notifications:preferences")),
    }
    return EmailMessage(
        subject=f"SpineBench: {notification.title}",
        body=render_to_string("notifications/email/notification.txt", context),
        to=[notification.user.email],
        # RFC 2369 / RFC 8058: mail clients show an unsubscribe button that POSTs to the same link.
        headers={"List-Unsubscribe": f"<{unsubscribe}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


@shared_task(
    bind=True,
    autoretry_for=MAIL_ERRORS,
    max_retries=MAX_RETRIES,
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=True,
)
def send_notification_email(self, *, notification_pk: int) -> str:
    notification = Notification.objects.select_related("user").filter(pk=notification_pk).first()
    if notification is None:
        return "gone"
    if notification.emailed_at is not None:
        return "already sent"  # a second delivery of the message (late acks) sends nothing twice
    if not wants_email(user=notification.user, kind=notification.kind):
        return "not wanted"  # unsubscribed or address unverified since the notification was made
    try:
        build_message(notification).send()
    except MAIL_ERRORS as error:
        attempt = self.request.retries + 1
        message = f"try {attempt} of {MAX_RETRIES + 1}: {type(error).__name__}: {error}"[:2000]
        Notification.objects.filter(pk=notification_pk).update(email_error=message)
        if self.request.retries >= MAX_RETRIES:
            log.warning("notification %s: mail not sent after %s tries: %s", notification_pk, attempt, error)
            return "failed"
        raise  # autoretry_for schedules the next try with backoff
    Notification.objects.filter(pk=notification_pk).update(emailed_at=timezone.now(), email_error="")
    return "sent"


@shared_task
def send_phase_closing_reminders() -> int:
    """Beat: the reminders of phases closing within a day (notifications.reminders), each made once."""
    return send_closing_reminders()


@shared_task
def send_announcement(*, announcement_pk: int) -> int:
    """Notify a challenge's approved participants of an announcement (once, however often it is delivered)."""
    return notify_participants(announcement_pk=announcement_pk)
