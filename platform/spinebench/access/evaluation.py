"""Evaluation images and metric declarations of a phase: only the challenge's organizers (and site operators) see
and change them; the runs' errors and logs may quote the ground truth, so nobody else reads them."""

from __future__ import annotations

from spinebench.challenges.models import Phase


def can_manage_phase_evaluation(phase: Phase, user) -> bool:
    return phase.challenge.is_organizer(user)
