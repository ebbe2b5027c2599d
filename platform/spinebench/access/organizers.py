"""Organizers: who may create a challenge, and who may manage one (its console pages, API and background jobs).

Rules:
- creating a challenge: any signed-in user; when the setting `SPINEBENCH_CHALLENGE_CREATORS_GROUP` names a group,
  only its members (site operators always);
- managing a challenge (editing it, its phases, organizers, registrations, datasets; reading its audit trail): its
  organizers and site operators (`Challenge.is_organizer`, which counts superusers);
- the Django admin: site operators only (`spinebench.organizers.admin_site`).
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404

from spinebench.challenges.models import Challenge, Phase


def can_create_challenge(user) -> bool:
    if not (user and user.is_authenticated):
        return False
    group = settings.SPINEBENCH_CHALLENGE_CREATORS_GROUP
    if not group or user.is_superuser:
        return True
    return user.groups.filter(name=group).exists()


def can_manage_challenge(challenge: Challenge, user) -> bool:
    return challenge.is_organizer(user)


def managed_challenges(user):
    """The challenges `user` manages (every one for a site operator)."""
    if not (user and user.is_authenticated):
        return Challenge.objects.none()
    if user.is_superuser:
        return Challenge.objects.all()
    return Challenge.objects.filter(organizers=user)


def get_managed_challenge(user, slug: str) -> Challenge:
    """The challenge `slug` when `user` manages it; 404 otherwise (a hidden challenge is not revealed to outsiders,
    and a visible one answers the same, so the answer never tells who organizes what)."""
    challenge = get_object_or_404(Challenge, slug=slug)
    if not can_manage_challenge(challenge, user):
        raise Http404
    return challenge


def get_managed_phase(user, slug: str, phase_pk: int) -> Phase:
    challenge = get_managed_challenge(user, slug)
    return get_object_or_404(challenge.phases.select_related("challenge"), pk=phase_pk)


def can_run_organizer_job(challenge: Challenge, user) -> bool:
    """A background job started by an organizer acts only while its starter still manages the challenge."""
    return can_manage_challenge(challenge, user)


def can_view_bundle_import(job, user) -> bool:
    """An uploaded bundle's import job: its uploader and site operators."""
    return bool(user and user.is_authenticated and (user.is_superuser or job.uploader_id == user.pk))
