"""View shortcuts built on the rules: fetch an object or answer 404, so a page never reveals what it hides."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import get_object_or_404

from spinebench.challenges.models import Phase

from .challenges import can_view_phase


def get_visible_phase(request, challenge: str, phase: str) -> Phase:
    """The phase `challenge`/`phase` (slugs) when the request's user may see it; 404 otherwise (also when it exists
    but is hidden from them)."""
    # The dataset link comes along: the rules and pages of a phase read its dataset (one join, not two queries).
    related = Phase.objects.select_related("challenge", "dataset_link__dataset")
    found = get_object_or_404(related, challenge__slug=challenge, slug=phase)
    if not can_view_phase(found, request.user):
        raise Http404
    return found
