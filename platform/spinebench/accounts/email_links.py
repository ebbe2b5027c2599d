"""Signed, expiring links for verifying an address and for changing it. The link carries the user id and the
address (so a link for an old address can never verify a new one) and is signed with SECRET_KEY by a
TimestampSigner; nothing is stored until it is followed."""

from __future__ import annotations

import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from .models import Profile

log = logging.getLogger(__name__)

VERIFY_SALT = "spinebench.accounts.verify-email"
CHANGE_SALT = "spinebench.accounts.change-email"


class LinkInvalid(Exception):
    """A link that was tampered with or is not one of ours."""


class LinkExpired(Exception):
    """An authentic link past its lifetime; `user_pk` lets the page offer a new one."""

    def __init__(self, user_pk: int):
        super().__init__("expired")
        self.user_pk = user_pk


@dataclass(frozen=True)
class LinkPayload:
    user_pk: int
    email: str


def max_age_s() -> int:
    return int(settings.SPINEBENCH_EMAIL_LINK_HOURS) * 3600


def make_token(*, user, email: str, salt: str) -> str:
    return signing.TimestampSigner(salt=salt).sign_object({"u": user.pk, "e": email})


def read_token(token: str, *, salt: str) -> LinkPayload:
    signer = signing.TimestampSigner(salt=salt)
    try:
        data = signer.unsign_object(token, max_age=max_age_s())
    except signing.SignatureExpired:
        data = signer.unsign_object(token)  # authentic (the signature checked out), only too old
        raise LinkExpired(int(data["u"])) from None
    except (signing.BadSignature, ValueError, TypeError, KeyError):
        raise LinkInvalid from None
    try:
        return LinkPayload(user_pk=int(data["u"]), email=str(data["e"]))
    except (KeyError, TypeError, ValueError):
        raise LinkInvalid from None


class TooManyMails(Exception):
    """More link mails for one account than SPINEBENCH_LINK_MAILS_PER_HOUR: the form is not a way to spam others."""


def _count_link_mail(user) -> None:
    key = f"spinebench:link-mails:{user.pk}"
    cache.add(key, 0, timeout=3600)
    try:
        sent = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=3600)
        sent = 1
    if sent > settings.SPINEBENCH_LINK_MAILS_PER_HOUR:
        raise TooManyMails


def _send(*, user, to: str, subject: str, template: str, context: dict) -> bool:
    """Send one mail; a mail server that refuses or is down gives False (the page says so), never a 500.
    Raises TooManyMails past the hourly limit of link mails for this account."""
    _count_link_mail(user)
    body = render_to_string(template, context)
    try:
        send_mail(subject, body, None, [to])
    except (smtplib.SMTPException, OSError) as error:
        log.warning("mail to %s not sent: %s", to, error)
        return False
    return True


def send_verification(*, request, user) -> bool:
    token = make_token(user=user, email=user.email, salt=VERIFY_SALT)
    link = request.build_absolute_uri(reverse("verify-email", kwargs={"token": token}))
    context = {"user": user, "link": link, "hours": settings.SPINEBENCH_EMAIL_LINK_HOURS}
    return _send(user=user, to=user.email, subject="SpineBench: verify your email address",
                 template="accounts/email/verify.txt", context=context)


def send_change_confirmation(*, request, user, new_email: str) -> bool:
    token = make_token(user=user, email=new_email, salt=CHANGE_SALT)
    link = request.build_absolute_uri(reverse("confirm-email-change", kwargs={"token": token}))
    context = {"user": user, "link": link, "new_email": new_email, "hours": settings.SPINEBENCH_EMAIL_LINK_HOURS}
    return _send(user=user, to=new_email, subject="SpineBench: confirm your new email address",
                 template="accounts/email/change.txt", context=context)


def email_taken(email: str, *, exclude_pk: int | None = None) -> bool:
    users = get_user_model().objects.filter(email__iexact=email.strip())
    if exclude_pk is not None:
        users = users.exclude(pk=exclude_pk)
    return users.exists()


def mark_verified(*, user, email: str) -> None:
    Profile.objects.update_or_create(
        user=user, defaults={"verified_email": email, "email_verified_at": timezone.now()}
    )


def verify(token: str):
    """The user whose address the link verifies (now marked verified). Raises LinkInvalid / LinkExpired."""
    payload = read_token(token, salt=VERIFY_SALT)
    user = get_user_model().objects.filter(pk=payload.user_pk).first()
    if user is None or user.email.strip().lower() != payload.email.strip().lower():
        raise LinkInvalid  # the account's address changed since the link was sent: that link is void
    mark_verified(user=user, email=user.email)
    return user


class EmailTaken(Exception):
    pass


def confirm_change(token: str):
    """Replace the account's address by the one the link confirms (and mark it verified)."""
    payload = read_token(token, salt=CHANGE_SALT)
    user = get_user_model().objects.filter(pk=payload.user_pk).first()
    if user is None:
        raise LinkInvalid
    if email_taken(payload.email, exclude_pk=user.pk):
        raise EmailTaken
    user.email = payload.email
    user.save(update_fields=["email"])
    mark_verified(user=user, email=payload.email)
    return user
