"""Profiles and verified email addresses: the one place other apps ask whether a user may get mail or join a team."""

from __future__ import annotations

from .models import Profile


def profile_for(user) -> Profile:
    """The user's profile, created empty the first time (accounts older than profiles have none)."""
    profile, _ = Profile.objects.get_or_create(user=user)
    return profile


def has_verified_email(user) -> bool:
    """True when the account's current email address was verified by a link sent to it. Team invitations and
    notification mail require this; an address changed by other means (admin) counts as unverified."""
    if not user or not user.is_authenticated or not user.email:
        return False
    profile = Profile.objects.filter(user=user).only("verified_email", "email_verified_at").first()
    return bool(
        profile and profile.email_verified_at and profile.verified_email.lower() == user.email.strip().lower()
    )
