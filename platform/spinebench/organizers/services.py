"""The organizers' actions on a challenge: create and edit it, invite and remove co-organizers. Each one runs in one
transaction, validates everything before it changes anything (a ValidationError keyed by the field at fault) and
reports itself to the audit trail with the before/after of the fields it changed. Callers (pages, API) ask the
access policy first (`spinebench.access.can_create_challenge`, `can_manage_challenge`)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Q

from spinebench.challenges.models import Challenge
from spinebench.challenges.signals import report_organizer_action
from spinebench.challenges.terms import current_terms, publish_terms

from .changes import changed, field_values

#: What the challenge editor sets (the logo has its own argument: it arrives re-encoded).
CHALLENGE_FIELDS = ("title", "slug", "summary", "description", "is_public", "registration_mode")


def _apply(challenge: Challenge, data: dict[str, Any]) -> None:
    unknown = set(data) - set(CHALLENGE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    for name, value in data.items():
        setattr(challenge, name, value)


def _save_logo(challenge: Challenge, logo: ContentFile | None, remove_logo: bool) -> None:
    if logo is not None:
        challenge.logo.save(f"{challenge.slug}.png", logo, save=False)
    elif remove_logo and challenge.logo:
        challenge.logo = ""  # the file is left to storage clean-up: the audit trail names it


@transaction.atomic
def create_challenge(*, creator, data: dict[str, Any], logo: ContentFile | None = None) -> Challenge:
    """A new challenge with `creator` as its first organizer."""
    challenge = Challenge()
    _apply(challenge, data)
    challenge.full_clean(exclude=["logo"])
    _save_logo(challenge, logo, remove_logo=False)
    challenge.save()
    challenge.organizers.add(creator)
    report_organizer_action(
        challenge=challenge, actor=creator, action="challenge.create", target=f"challenge {challenge.slug}",
        changes=changed({}, field_values(challenge, (*CHALLENGE_FIELDS, "logo"))),
    )
    return challenge


@transaction.atomic
def update_challenge(
    *, challenge: Challenge, actor, data: dict[str, Any], logo: ContentFile | None = None, remove_logo: bool = False
) -> Challenge:
    """Apply `data` (any of CHALLENGE_FIELDS) and the logo; nothing is saved when a field is invalid."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    fields = (*CHALLENGE_FIELDS, "logo")
    before = field_values(challenge, fields)
    _apply(challenge, data)
    challenge.full_clean(exclude=["logo"])
    _save_logo(challenge, logo, remove_logo)
    challenge.save()
    changes = changed(before, field_values(challenge, fields))
    if changes:
        report_organizer_action(
            challenge=challenge, actor=actor, action="challenge.update", target=f"challenge {challenge.slug}",
            changes=changes,
        )
    return challenge


def find_user(identifier: str):
    """The active user whose username or email is `identifier` (case-insensitive), or a ValidationError keyed
    `user`. An email shared by several accounts is refused rather than guessed."""
    identifier = identifier.strip()
    if not identifier:
        raise ValidationError({"user": "Give a username or an email address."})
    named = Q(username__iexact=identifier) | Q(email__iexact=identifier)
    matches = list(get_user_model().objects.filter(named, is_active=True)[:2])
    if not matches:
        raise ValidationError({"user": f"No account has the username or email {identifier!r}."})
    if len(matches) > 1:
        raise ValidationError({"user": f"Several accounts match {identifier!r}; give the username."})
    return matches[0]


@transaction.atomic
def add_organizer(*, challenge: Challenge, actor, identifier: str):
    """Make the user named by `identifier` (username or email) an organizer of `challenge`."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    user = find_user(identifier)
    if challenge.organizers.filter(pk=user.pk).exists():
        raise ValidationError({"user": f"{user.get_username()} is already an organizer of this challenge."})
    challenge.organizers.add(user)
    report_organizer_action(
        challenge=challenge, actor=actor, action="organizer.add", target=f"user {user.get_username()}",
    )
    return user


@transaction.atomic
def remove_organizer(*, challenge: Challenge, actor, user) -> None:
    """Remove `user` from the organizers; never the last one (the challenge row lock serialises two removals)."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    organizers = challenge.organizers.all()
    if not organizers.filter(pk=user.pk).exists():
        raise ValidationError({"user": f"{user.get_username()} is not an organizer of this challenge."})
    if organizers.count() <= 1:
        raise ValidationError({"user": "A challenge keeps at least one organizer: invite another one first."})
    challenge.organizers.remove(user)
    report_organizer_action(
        challenge=challenge, actor=actor, action="organizer.remove", target=f"user {user.get_username()}",
    )


def publish_challenge_terms(*, challenge: Challenge, actor, text: str):
    """A new version of the terms; every participant must accept it before downloading or submitting again."""
    if not text.strip():
        raise ValidationError({"text": "The terms cannot be empty."})
    with transaction.atomic():
        previous = current_terms(challenge)
        terms = publish_terms(challenge, text=text)
        report_organizer_action(
            challenge=challenge, actor=actor, action="terms.publish", target=f"terms v{terms.version}",
            changes={"version": [previous.version if previous else None, terms.version]},
        )
    return terms
