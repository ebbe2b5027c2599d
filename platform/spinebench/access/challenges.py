"""Challenges and phases: which a user sees, and who may download a phase's test inputs."""

from __future__ import annotations

from django.db.models import Q

from spinebench.challenges.models import Challenge, Phase


def visible_challenges(user):
    if user and user.is_authenticated and user.is_superuser:
        return Challenge.objects.all()
    if user and user.is_authenticated:
        return Challenge.objects.filter(Q(is_public=True) | Q(organizers=user)).distinct()
    return Challenge.objects.filter(is_public=True)


def visible_phases(challenge: Challenge, user):
    phases = challenge.phases.all()
    return phases if challenge.is_organizer(user) else phases.filter(is_public=True)


def can_view_phase(phase: Phase, user) -> bool:
    challenge = phase.challenge
    return challenge.is_organizer(user) or (challenge.is_public and phase.is_public)


def can_download_phase_inputs(phase: Phase, user) -> bool:
    """The inputs (never the labels) of the cases a CSV phase scores, for its challenge's approved participants and
    organizers: one cannot predict a test set without its images. Algorithm phases keep their inputs inside the
    sandbox."""
    if phase.dataset is None or phase.submission_kind != Phase.SubmissionKind.CSV or not can_view_phase(phase, user):
        return False
    return phase.challenge.is_participant(user)  # organizers count as participants


def phase_labels_public(phase: Phase) -> bool:
    """The phase shows per-case results and scores against a split whose labels participants already have."""
    dataset = phase.dataset
    return phase.show_case_results and dataset is not None and not dataset.is_hidden
