"""Datasets: who may download a training split."""

from __future__ import annotations


def can_download_dataset(dataset, user) -> bool:
    """Training splits only (labels included), for approved participants and organizers of its challenge."""
    if dataset.is_hidden or dataset.challenge is None:
        return False
    return dataset.challenge.is_participant(user)
