"""Celery tasks of the `baselines` queue: one baseline run at a time on the baselines worker (concurrency 1, capped
torch threads), so training never delays scoring. Tasks take primary keys as keyword-only arguments, claim the row
under its lock and act once; a duplicate delivery finds the run claimed and leaves."""

from __future__ import annotations

from celery import shared_task

from .baseline_runs import claim, execute, sweep_expired_runs


@shared_task(name="spinebench.submissions.baseline_tasks.run_baseline_job")
def run_baseline_job(*, run_pk: int) -> str:
    run = claim(run_pk)
    if run is None:
        return "nothing to do"
    submission = execute(run)
    return f"submitted {submission.pk}" if submission else "failed"


@shared_task(name="spinebench.submissions.baseline_tasks.sweep_baseline_runs")
def sweep_baseline_runs() -> int:
    return sweep_expired_runs()
