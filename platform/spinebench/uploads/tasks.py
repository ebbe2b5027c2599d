"""Periodic housekeeping of the uploads app (beat, queue `scoring`)."""

from celery import shared_task

from . import chunked


@shared_task(name="spinebench.uploads.tasks.sweep_upload_sessions")
def sweep_upload_sessions() -> dict[str, int]:
    """Expired chunked upload sessions lose their partial bytes (and an unclaimed finished file)."""
    return chunked.sweep_expired()
