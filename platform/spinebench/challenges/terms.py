"""A challenge's terms / data-use agreement: versions, and who accepted which one when.

Rule: when a challenge has terms, a participant (not an organizer) may download its training data or submit only
after accepting the newest version; publishing a new version asks everyone again. The submission service and the
access policy's download rule both ask `has_accepted_current_terms`."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Max

from .models import Challenge, ChallengeTerms, TermsAcceptance


def current_terms(challenge: Challenge) -> ChallengeTerms | None:
    return challenge.terms_versions.order_by("-version").first()


def has_accepted_current_terms(challenge: Challenge, user) -> bool:
    """True when the challenge has no terms, for its organizers, or when `user` accepted the newest version."""
    terms = current_terms(challenge)
    if terms is None or challenge.is_organizer(user):
        return True
    return bool(user and user.is_authenticated and terms.acceptances.filter(user=user).exists())


def accept_current_terms(challenge: Challenge, user) -> TermsAcceptance | None:
    """Record that `user` accepts the newest version now (kept once per version); None when there are no terms."""
    terms = current_terms(challenge)
    if terms is None:
        return None
    acceptance, _ = TermsAcceptance.objects.get_or_create(terms=terms, user=user)
    return acceptance


@transaction.atomic
def publish_terms(challenge: Challenge, *, text: str) -> ChallengeTerms:
    """A new version (the previous number + 1) in force from now on."""
    Challenge.objects.select_for_update().filter(pk=challenge.pk).first()
    last = challenge.terms_versions.aggregate(last=Max("version"))["last"] or 0
    return ChallengeTerms.objects.create(challenge=challenge, version=last + 1, text=text)
