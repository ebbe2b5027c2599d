"""The platform's view of the evaluators' task registry (`evaluators.tasks`): task ids, metrics and directions."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def get_task(task_id: str):
    from evaluators.tasks import get_task as evaluators_get_task

    try:
        return evaluators_get_task(task_id)
    except KeyError:
        raise ValidationError(f"unknown task {task_id!r}; known tasks: {', '.join(sorted(task_ids()))}") from None


def task_ids() -> list[str]:
    from evaluators.tasks import TASKS

    return sorted(TASKS)


def validate_task_id(task_id: str) -> None:
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
