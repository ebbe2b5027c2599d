"""Celery tasks of the evaluation app (scoring queue). Keyword-only primary keys; the service locks, checks the
status and acts once (spinebench.evaluation.rescoring)."""

from __future__ import annotations

from celery import shared_task

from .rescoring import run_rescore


@shared_task(name="spinebench.evaluation.tasks.rescore_phase")
def rescore_phase(*, job_pk: int) -> str:
    """Evaluate a phase's succeeded submissions again and switch the phase to the new evaluation version."""
    return run_rescore(job_pk=job_pk)
