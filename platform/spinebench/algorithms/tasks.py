"""Celery tasks of the container queues. `process_algorithm_submission` goes to `containers-gpu` when its phase
requires a GPU and to `containers-cpu` otherwise, whoever dispatches it (the queue is chosen in apply_async);
the recovery task goes to `containers-cpu`, whose workers reach the engine."""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from spinebench.celery import QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU

from . import execution


def queue_for_submission(submission_pk: int) -> str:
    from spinebench.submissions.models import Submission

    requires_gpu = (
        Submission.objects.filter(pk=submission_pk).values_list("phase__requires_gpu", flat=True).first() or False
    )
    return QUEUE_CONTAINERS_GPU if requires_gpu else QUEUE_CONTAINERS_CPU


class ContainerQueueTask(Task):
    def apply_async(self, args=None, kwargs=None, **options):
        if "queue" not in options:
            pk = (kwargs or {}).get("submission_pk")
            options["queue"] = queue_for_submission(pk) if pk is not None else QUEUE_CONTAINERS_CPU
        return super().apply_async(args=args, kwargs=kwargs, **options)


@shared_task(bind=True, base=ContainerQueueTask, name="spinebench.algorithms.tasks.process_algorithm_submission",
             acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_algorithm_submission(self, *, submission_pk: int) -> str:
    outcome = execution.process_submission(submission_pk)
    if outcome == "busy":  # a live worker holds the run; look again once its lease could have lapsed
        raise self.retry(countdown=execution.lease_seconds())
    if outcome == "requeued":  # the engine went away (restarted): try again once it could be back
        raise self.retry(countdown=settings.SPINEBENCH_ENGINE_RETRY_SECONDS)
    return outcome


@shared_task(base=ContainerQueueTask, name="spinebench.algorithms.tasks.recover_container_jobs")
def recover_container_jobs() -> dict[str, int]:
    """Periodic: requeue runs of dead workers, remove orphan containers (schedule it beside the time-limit sweep)."""
    return execution.recover()
