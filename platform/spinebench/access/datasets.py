"""Datasets: who may download a training split."""

from __future__ import annotations

from spinebench.challenges.terms import has_accepted_current_terms


def can_download_dataset(dataset, user) -> bool:
    """Training splits that a phase offers as its training dataset (labels included), for approved participants who
    accepted the challenge's current terms (when it has terms), and its organizers."""
    if dataset.is_hidden or dataset.challenge is None or not dataset.training_phase_links.exists():
        return False  # a training split is offered by the phases it is attached to, not before or after
    return dataset.challenge.is_participant(user) and has_accepted_current_terms(dataset.challenge, user)
