"""Registration for a challenge."""

from __future__ import annotations

from .models import Challenge, Registration


def register(challenge: Challenge, user):
    """Create (or return) the user's registration; approved at once when the challenge auto-approves."""
    status = (
        Registration.Status.APPROVED
        if challenge.registration_mode == Challenge.RegistrationMode.AUTO or challenge.is_organizer(user)
        else Registration.Status.PENDING
    )
    registration, _ = Registration.objects.get_or_create(challenge=challenge, user=user, defaults={"status": status})
    return registration
