"""Issuing, finding and revoking API tokens (the views, the API and the management command all come here)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import ApiToken, hash_secret

MAX_TOKEN_DAYS = 365
LAST_USED_RESOLUTION = timedelta(minutes=1)  # coarser than this would hide use; finer means a write per request


class TokenRefused(ValueError):
    """A token cannot be issued as asked (the message says why, for the API's 400)."""


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    secret: str  # shown once, never stored


def default_ttl_days() -> int:
    return int(settings.SPINEBENCH_TOKEN_TTL_DAYS)  # accounts.checks refuses a value outside 1..365


def issue_token(
    *, name: str, kind: str = ApiToken.Kind.USER, user=None, expires_in_days: int | None = None
) -> IssuedToken:
    """A new token; `expires_in_days` defaults to SPINEBENCH_TOKEN_TTL_DAYS and may not pass a year."""
    days = default_ttl_days() if expires_in_days is None else expires_in_days
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise TokenRefused(f"A token lives from 1 to {MAX_TOKEN_DAYS} days; {days} was asked.")
    if (kind == ApiToken.Kind.USER) != (user is not None):
        raise TokenRefused("A user token needs its owner; a worker token belongs to the site, not to a user.")
    name = (name or "").strip()
    if not name:
        raise TokenRefused("Give the token a name, so you can tell it apart later.")
    secret = secrets.token_urlsafe(32)
    now = timezone.now()
    token = ApiToken.objects.create(
        user=user,
        name=name[:100],
        kind=kind,
        key_hash=hash_secret(secret),
        prefix=secret[:6],
        created=now,
        expires=now + timedelta(days=days),
    )
    return IssuedToken(token=token, secret=secret)


def find_token(secret: str) -> ApiToken | None:
    """The token with this secret, active or not (the caller says why an inactive one is refused)."""
    return ApiToken.objects.select_related("user").filter(key_hash=hash_secret(secret)).first()


def mark_used(token: ApiToken) -> None:
    """Record use at most once a minute per token: a conditional UPDATE, so concurrent requests write once."""
    now = timezone.now()
    if token.last_used is not None and now - token.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).filter(
        Q(last_used__isnull=True) | Q(last_used__lte=now - LAST_USED_RESOLUTION)
    ).update(last_used=now)
    token.last_used = now


def revoke(token: ApiToken) -> None:
    if token.revoked is None:
        token.revoked = timezone.now()
        token.save(update_fields=["revoked"])
