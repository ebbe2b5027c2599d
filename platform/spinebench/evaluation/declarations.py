"""Declaring the metrics of a custom phase (the page and the API call `declare_metrics`), and turning a phase into a
custom one once its evaluation image is in.

Rules: at least one metric, exactly one primary, keys unique and shaped like METRIC_KEY, directions higher/lower,
scope case/aggregate; the predictions format csv or case-folder; output files plain names. Every refusal is a
ValidationError keyed by the field at fault (`metrics`, `predictions_format`, `output_files`) and changes nothing.
A custom phase's leaderboard follows its declaration: the primary metric ranks it, the others are its columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django.core.exceptions import ValidationError
from django.db import transaction

from evaluators.contract import CUSTOM_TASK, ContractError, Declaration
from evaluators.contract import DeclaredMetric as ContractMetric
from spinebench.challenges.models import Phase
from spinebench.challenges.signals import ranking_changed, report_organizer_action

from .images import CustomEvaluation, DeclaredMetric

SCOPES = tuple(DeclaredMetric.Scope.values)


def _metric(index: int, item: object) -> ContractMetric:
    where = f"metric {index + 1}"
    if not isinstance(item, Mapping):
        raise ValidationError({"metrics": f"{where} must be an object with key, label, direction, primary, scope"})
    key, label = item.get("key"), item.get("label") or item.get("key")
    scope = item.get("scope", DeclaredMetric.Scope.CASE)
    if not isinstance(key, str) or not isinstance(label, str) or len(label) > 120:
        raise ValidationError({"metrics": f"{where}: key and label must be text (label at most 120 characters)"})
    if scope not in SCOPES:
        raise ValidationError({"metrics": f"{where} ({key}): scope must be one of {', '.join(SCOPES)}"})
    if not isinstance(item.get("primary", False), bool):
        raise ValidationError({"metrics": f"{where} ({key}): primary must be true or false"})
    return ContractMetric(key=key, label=label, direction=str(item.get("direction", "")),
                          primary=item.get("primary", False), per_case=scope == DeclaredMetric.Scope.CASE)


def checked_declaration(*, metrics: Sequence[object], predictions_format: str,
                        output_files: Sequence[object]) -> Declaration:
    if not isinstance(metrics, Sequence) or isinstance(metrics, str) or not metrics:
        raise ValidationError({"metrics": "declare at least one metric"})
    if len(metrics) > 50:
        raise ValidationError({"metrics": "declare at most 50 metrics"})
    if not isinstance(output_files, Sequence) or isinstance(output_files, str) or len(output_files) > 20 \
            or not all(isinstance(name, str) for name in output_files):
        raise ValidationError({"output_files": "output_files must be a list of at most 20 file names"})
    declared = tuple(_metric(index, item) for index, item in enumerate(metrics))
    if sum(metric.primary for metric in declared) != 1:
        raise ValidationError({"metrics": "exactly one metric must be the primary one (it ranks the leaderboard)"})
    try:
        return Declaration(metrics=declared, predictions_format=predictions_format,
                           output_files=tuple(str(name) for name in output_files))
    except ContractError as error:
        message = str(error)
        field = ("predictions_format" if message.startswith("predictions format")
                 else "output_files" if message.startswith("output file") else "metrics")
        raise ValidationError({field: message}) from None


def declare_metrics(*, phase: Phase, actor, metrics: Sequence[object], predictions_format: str = "csv",
                    output_files: Sequence[object] = ()) -> Declaration:
    """Replace the phase's declaration (all or nothing); a custom phase is re-ranked by it."""
    declaration = checked_declaration(metrics=metrics, predictions_format=predictions_format,
                                      output_files=output_files)
    with transaction.atomic():
        locked = Phase.objects.select_for_update().get(pk=phase.pk)
        before = [m.key for m in DeclaredMetric.objects.filter(phase=locked)]
        DeclaredMetric.objects.filter(phase=locked).delete()
        DeclaredMetric.objects.bulk_create([
            DeclaredMetric(phase=locked, key=m.key, label=m.label, direction=m.direction, primary=m.primary,
                           scope=DeclaredMetric.Scope.CASE if m.per_case else DeclaredMetric.Scope.AGGREGATE,
                           order=index)
            for index, m in enumerate(declaration.metrics)
        ])
        CustomEvaluation.objects.update_or_create(
            phase=locked, defaults={"predictions_format": declaration.predictions_format,
                                    "output_files": list(declaration.output_files)},
        )
        if locked.task == CUSTOM_TASK:
            follow_declaration(locked, declaration)
        report_organizer_action(
            challenge=locked.challenge, actor=actor, action="phase.metrics_declared", target=f"phase {locked.pk}",
            changes={"metrics": [before, [m.key for m in declaration.metrics]]},
            note=f"{len(declaration.metrics)} metrics, predictions as {declaration.predictions_format}",
        )
    return declaration


def follow_declaration(phase: Phase, declaration: Declaration) -> None:
    """Make the phase custom and its leaderboard configuration the declaration's; re-rank it."""
    phase.task = CUSTOM_TASK
    phase.primary_metric = ""
    phase.extra_metrics = [metric.key for metric in declaration.metrics if not metric.primary]
    phase.metric_directions = {}
    phase.save(update_fields=["task", "primary_metric", "extra_metrics", "metric_directions"])
    ranking_changed.send(sender=Phase, phase_pk=phase.pk)
