"""The phase editor's actions: create, edit and reorder a challenge's phases. Validation is the model's own
(`Phase.clean`: dates in order, the leaderboard configuration against the task registry, datasets of the phase's
task), so the editor, the API and the bundle importer apply one set of rules; errors are keyed by field.

An edit that changes how the leaderboard ranks (RANKING_FIELDS) re-ranks the phase at once, inside the edit's
transaction (`challenges.signals.ranking_changed`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from spinebench.challenges.models import Challenge, Phase
from spinebench.challenges.signals import ranking_changed, report_organizer_action
from spinebench.submissions.parts import validate_public_case_ids

from .changes import changed, field_values

#: What the phase editor sets. Datasets are attached through the datasets services, not here.
PHASE_FIELDS = (
    "slug", "title", "description", "task", "submission_kind", "opens_at", "closes_at", "is_public",
    "show_case_results", "submission_limit", "submission_limit_period_hours", "submission_total_limit",
    "max_upload_bytes", "time_limit_seconds", "case_time_limit_seconds", "memory_limit_mb", "cpu_limit",
    "pids_limit", "output_limit_mb", "requires_gpu", "primary_metric", "extra_metrics", "metric_directions",
    "decimal_places", "ranking_method", "selection", "max_chosen", "auto_publish", "score_visibility",
    "public_case_ids", "public_fraction",
)
#: Fields that decide a split phase's parts: fixed once its final leaderboard is revealed.
SPLIT_FIELDS = ("score_visibility", "public_case_ids", "public_fraction")
#: Fields whose change alters the ranks (or which submissions are ranked).
RANKING_FIELDS = frozenset(
    {"task", "primary_metric", "extra_metrics", "metric_directions", "ranking_method", "selection", "max_chosen",
     "score_visibility"}  # a split phase ranks two leaderboards (public and private parts), an unsplit one one
)


def _apply(phase: Phase, data: dict[str, Any]) -> None:
    unknown = set(data) - set(PHASE_FIELDS)
    if unknown:
        raise ValidationError({name: "This field cannot be set here." for name in sorted(unknown)})
    for name, value in data.items():
        setattr(phase, name, value)


def _validate(phase: Phase, before: dict[str, Any] | None = None) -> None:
    """Every field's own validators, the model's clean() and the slug's uniqueness in the challenge, collected into
    one ValidationError keyed by field; a split phase's public case ids must be cases of its test dataset, and its
    parts stay as they were once its final leaderboard is revealed."""
    phase.full_clean()
    dataset = phase.dataset
    if phase.is_split and dataset is not None:
        validate_public_case_ids(public_case_ids=phase.public_case_ids, case_ids=dataset.case_ids())
    if before is not None and phase.scores_revealed_at is not None:
        moved = [name for name in SPLIT_FIELDS if before[name] != getattr(phase, name)]
        if moved:
            raise ValidationError({name: "The leaderboard is revealed: this can no longer change." for name in moved})


@transaction.atomic
def create_phase(*, challenge: Challenge, actor, data: dict[str, Any]) -> Phase:
    """A new phase, last in the challenge's order."""
    challenge = Challenge.objects.select_for_update().get(pk=challenge.pk)
    last = challenge.phases.aggregate(last=Max("order"))["last"]
    phase = Phase(challenge=challenge, order=0 if last is None else last + 1)
    _apply(phase, data)
    _validate(phase)
    phase.save()
    report_organizer_action(
        challenge=challenge, actor=actor, action="phase.create", target=f"phase {phase.slug}",
        changes=changed({}, field_values(phase, PHASE_FIELDS)),
    )
    return phase


@transaction.atomic
def update_phase(*, phase: Phase, actor, data: dict[str, Any]) -> Phase:
    """Apply `data` (any of PHASE_FIELDS); nothing is saved when a field is invalid."""
    phase = Phase.objects.select_for_update().select_related("challenge").get(pk=phase.pk)
    before = field_values(phase, PHASE_FIELDS)
    _apply(phase, data)
    _validate(phase, before)
    phase.save()
    changes = changed(before, field_values(phase, PHASE_FIELDS))
    if not changes:
        return phase
    report_organizer_action(
        challenge=phase.challenge, actor=actor, action="phase.update", target=f"phase {phase.slug}", changes=changes,
    )
    if RANKING_FIELDS & set(changes):
        ranking_changed.send(sender=Phase, phase_pk=phase.pk)
    return phase


@transaction.atomic
def move_phase(*, phase: Phase, actor, offset: int) -> None:
    """Move `phase` `offset` places (negative: earlier) in its challenge's order, clamped to the ends; the orders are
    renumbered 0..n-1 so that ties left by older data disappear."""
    challenge = Challenge.objects.select_for_update().get(pk=phase.challenge_id)
    ordered = list(challenge.phases.order_by("order", "pk"))
    index = next(i for i, item in enumerate(ordered) if item.pk == phase.pk)
    target = max(0, min(len(ordered) - 1, index + offset))
    if target == index:
        return
    ordered.insert(target, ordered.pop(index))
    for position, item in enumerate(ordered):
        if item.order != position:
            Phase.objects.filter(pk=item.pk).update(order=position)
    report_organizer_action(
        challenge=challenge, actor=actor, action="phase.move", target=f"phase {phase.slug}",
        changes={"position": [index + 1, target + 1]},
    )
