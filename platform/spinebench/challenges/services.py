"""Registration for a challenge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from .models import Challenge, Registration
from .questions import clean_answers, store_answers


@transaction.atomic
def register(challenge: Challenge, user, *, answers: Mapping[str, Any] | None = None):
    """Create (or return) the user's registration; approved at once when the challenge auto-approves.

    A new registration answers the challenge's questions (`answers` keyed by each question's field name): a missing
    or invalid answer raises a ValidationError keyed by that field name and registers nothing. An existing
    registration is returned as it is (its answers are not changed)."""
    existing = Registration.objects.filter(challenge=challenge, user=user).first()
    if existing is not None:
        return existing
    cleaned = clean_answers(challenge, answers)
    status = (
        Registration.Status.APPROVED
        if challenge.registration_mode == Challenge.RegistrationMode.AUTO or challenge.is_organizer(user)
        else Registration.Status.PENDING
    )
    registration, created = Registration.objects.get_or_create(
        challenge=challenge, user=user, defaults={"status": status}
    )
    if created:
        store_answers(registration, cleaned)
    return registration
