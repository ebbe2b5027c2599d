"""The platform's view of the evaluators' task registry (`evaluators.tasks`): task ids, metrics and directions.

A phase scored by its own evaluation image has the task `custom`: its metrics are the declaration the `evaluation`
app stores for the phase, read through the provider that app registers at ready time (`register_declaration`), so
this app never imports it. `phase_task(phase)` answers for both kinds of phase."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError

from evaluators.contract import CUSTOM_TASK, Declaration

#: phase -> its custom declaration (None when it has none yet); registered by spinebench.evaluation.
_declaration_provider: Callable[[object], Declaration | None] | None = None


def register_declaration(provider: Callable[[object], Declaration | None]) -> None:
    global _declaration_provider
    _declaration_provider = provider


def declaration(phase) -> Declaration | None:
    """The metric declaration of a custom phase (None for built-in tasks and for custom phases without one)."""
    if phase.task != CUSTOM_TASK or _declaration_provider is None or phase.pk is None:
        return None
    return _declaration_provider(phase)


def phase_task(phase):
    """The registry entry a phase is scored and ranked by: its built-in task, or its declaration as a task."""
    if phase.task != CUSTOM_TASK:
        return get_task(phase.task)
    declared = declaration(phase)
    return (declared or Declaration(metrics=())).as_task()


def phase_metric_title(phase, key: str) -> str:
    if phase.task != CUSTOM_TASK:
        return metric_title(phase.task, key)
    base, _, group = key.partition("@")
    for metric in phase_task(phase).metrics:
        if metric.key == base:
            return metric.title + (f" · {group}" if group else "")
    return key


def phase_direction(phase, key: str) -> str:
    """'higher' or 'lower' for a metric of the phase (`metric@group` shares the direction of `metric`)."""
    if phase.task != CUSTOM_TASK:
        return default_direction(phase.task, key)
    base = key.split("@", 1)[0]
    task = phase_task(phase)
    for metric in task.metrics:
        if metric.key == base:
            return metric.direction
    declared = ", ".join(metric.key for metric in task.metrics) or "none yet"
    raise ValidationError(f"metric {key!r} is not declared for this phase's evaluation image (declared: {declared})")


def is_case_mean(phase, key: str) -> bool:
    """True when the leaderboard value of `key` is the mean of its per-case values."""
    from evaluators import resampling

    if phase.task != CUSTOM_TASK:
        return resampling.is_case_mean(phase.task, key)
    declared = declaration(phase)
    return bool(declared and declared.is_case_mean(key))


def get_task(task_id: str):
    """The built-in registry entry (ValidationError for unknown ids and for `custom`, which has none)."""
    from evaluators.tasks import get_task as evaluators_get_task

    try:
        return evaluators_get_task(task_id)
    except KeyError:
        raise ValidationError(f"unknown task {task_id!r}; known tasks: {', '.join(sorted(task_ids()))} "
                              f"(or {CUSTOM_TASK!r} for a phase with its own evaluation image)") from None


def task_ids() -> list[str]:
    from evaluators.tasks import TASKS

    return sorted(TASKS)


def validate_task_id(task_id: str) -> None:
    if task_id != CUSTOM_TASK:
        get_task(task_id)


def metric_keys(task_id: str) -> list[str]:
    return [metric.key for metric in get_task(task_id).metrics]


def default_direction(task_id: str, key: str) -> str:
    """'higher' or 'lower' for a metric key; `metric@group` columns share the direction of `metric`."""
    base = key.split("@", 1)[0]
    for metric in get_task(task_id).metrics:
        if metric.key == base:
            return metric.direction
    raise ValidationError(
        f"metric {key!r} is not a metric of task {task_id!r} (metrics: {', '.join(metric_keys(task_id))})"
    )


def metric_title(task_id: str, key: str) -> str:
    base, _, group = key.partition("@")
    for metric in get_task(task_id).metrics:
        if metric.key == base:
            unit = f" ({metric.unit})" if getattr(metric, "unit", "") else ""
            return f"{metric.title}{unit}" + (f" · {group}" if group else "")
    return key
