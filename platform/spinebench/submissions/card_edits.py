"""Editing a submission's method card after the upload (name, description, paper and code links). Who may is
spinebench.access.can_edit_method_card's rule; the page and the API (PATCH /api/submissions/{id}/) both call
`edit_method_card`."""

from __future__ import annotations

from dataclasses import replace

from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.challenges.signals import ranking_changed

from .method_cards import FIELDS, MethodCard
from .models import Submission
from .status import Status


def card_of(submission: Submission) -> MethodCard:
    return MethodCard(**{field: getattr(submission, field) for field in FIELDS})


def edit_method_card(*, submission: Submission, changes: dict[str, str]) -> list[str]:
    """Set the card fields named in `changes` (the others keep their values); the names of the fields that changed.
    Bad values raise a field-keyed ValidationError and change nothing. A scored submission's phase is re-ranked
    (ranks stay; the new snapshot carries the new card), so the leaderboard, exports and API show it at once."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValidationError({field: ["Not a method card field."] for field in sorted(unknown)})
    with transaction.atomic():
        locked = Submission.objects.select_for_update().get(pk=submission.pk)
        card = replace(card_of(locked), **changes)
        card.validate()
        values = card.as_fields()
        changed = [field for field in FIELDS if getattr(locked, field) != values[field]]
        if not changed:
            return []
        for field in changed:
            setattr(locked, field, values[field])
            setattr(submission, field, values[field])
        locked.save(update_fields=changed)
        if locked.status == Status.SUCCEEDED and not locked.is_baseline:
            ranking_changed.send(sender=Submission, phase_pk=locked.phase_id)
    return changed
