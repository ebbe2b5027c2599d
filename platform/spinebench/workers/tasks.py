"""Periodic housekeeping of the workers app (beat, queue `scoring`)."""

from celery import shared_task

from . import broker, services


@shared_task(name="spinebench.workers.tasks.prune")
def prune() -> dict[str, int]:
    removed = services.prune()
    removed["broker_messages"] = broker.prune_processed()
    return removed
