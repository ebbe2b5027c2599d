"""The parts of a split phase's test set: the organizers' list of public case ids, or the platform's reproducible
draw from the phase's secret seed. Scoring, re-scoring and the organizers' editor all ask `phase_parts`."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from evaluators.splits import PRIVATE, PUBLIC, draw_public_cases, split_parts
from spinebench.challenges.models import Phase

__all__ = ["PRIVATE", "PUBLIC", "phase_parts", "validate_public_case_ids"]


def phase_parts(phase: Phase, case_ids: list[str] | None = None) -> dict[str, list[str]] | None:
    """{"public": [...], "private": [...]} for a split phase (None for any other), over `case_ids` (default: its
    test dataset's cases)."""
    if not phase.is_split:
        return None
    if case_ids is None:
        dataset = phase.dataset
        if dataset is None:
            raise ValueError(f"phase {phase} has no test dataset to split")
        case_ids = dataset.case_ids()
    public = phase.public_case_ids or draw_public_cases(
        case_ids, fraction=phase.public_fraction, seed=phase.split_seed
    )
    return split_parts(case_ids, public=public)


def validate_public_case_ids(*, public_case_ids: list[str], case_ids: list[str]) -> None:
    """The organizers' public part must name cases of the test set and leave cases for the private part; the error
    is keyed by the field."""
    if not public_case_ids:
        return
    try:
        split_parts(case_ids, public=public_case_ids)
    except ValueError as error:
        raise ValidationError({"public_case_ids": str(error).removeprefix("public: ")}) from None
