"""Celery tasks of the container queues. `process_algorithm_submission` goes to `containers-gpu` when its phase
requires a GPU and to `containers-cpu` otherwise, whoever dispatches it (the queue is chosen in apply_async);
the recovery task goes to `containers-cpu`, whose workers reach the engine.

The same tasks run on a local worker (the site's database and disk, through local_client) and on a remote worker
host (`spinebench worker --server URL --token TOKEN`, settings.remote_worker: no database, no shared disk; through
the worker-token API, remote_client): `job_client()` picks by SPINEBENCH_JOB_SERVER, and the pipeline
(job_worker.py) is the same. `score_algorithm_submission` runs on the scoring queue, on the site's own workers: a
remote worker's run is scored there once its last job is reported."""

from __future__ import annotations

from celery import Task, shared_task
from django.conf import settings

from spinebench.celery import QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU


def queue_for_submission(submission_pk: int) -> str:
    from spinebench.submissions.models import Submission

    requires_gpu = (
        Submission.objects.filter(pk=submission_pk).values_list("phase__requires_gpu", flat=True).first() or False
    )
    return QUEUE_CONTAINERS_GPU if requires_gpu else QUEUE_CONTAINERS_CPU


def is_remote_worker() -> bool:
    return bool(getattr(settings, "SPINEBENCH_JOB_SERVER", ""))


def job_client():
    """The remote worker's client of the worker-token API, or the local one on the site's own host."""
    if is_remote_worker():
        from .remote_client import RemoteJobClient

        return RemoteJobClient.from_settings()
    from .local_client import LocalJobClient

    return LocalJobClient()


class ContainerQueueTask(Task):
    def apply_async(self, args=None, kwargs=None, **options):
        queue = options.get("queue")
        if queue is None:
            pk = (kwargs or {}).get("submission_pk")
            if options.get("routing_key") in (QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU):
                queue = options["routing_key"]  # a retry goes back to its queue (a remote worker has no database)
            else:
                queue = queue_for_submission(pk) if pk is not None else QUEUE_CONTAINERS_CPU
        if queue in (QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU):
            # Through the queue's own exchange, never the default one: a remote worker's broker user may publish to
            # its queue's exchange only (publishing to amq.default would reach every queue).
            options.update(queue=queue, exchange=queue, routing_key=queue)
        return super().apply_async(args=args, kwargs=kwargs, **options)


@shared_task(bind=True, base=ContainerQueueTask, name="spinebench.algorithms.tasks.process_algorithm_submission",
             acks_late=True, reject_on_worker_lost=True, max_retries=None)
def process_algorithm_submission(self, *, submission_pk: int) -> str:
    from .job_worker import ServerUnavailable, run_submission

    try:
        result = run_submission(job_client(), submission_pk)
    except ServerUnavailable:  # a remote worker that cannot reach the site: the run's lease lapses; try again later
        raise self.retry(countdown=settings.SPINEBENCH_ENGINE_RETRY_SECONDS) from None
    outcome = result["outcome"]
    if outcome == "busy":  # a live worker holds the run; look again once its lease could have lapsed
        raise self.retry(countdown=float(result.get("retry_after") or 60))
    if outcome == "requeued":  # the engine went away (restarted): try again once it could be back
        raise self.retry(countdown=settings.SPINEBENCH_ENGINE_RETRY_SECONDS)
    return outcome


@shared_task(bind=True, base=ContainerQueueTask, name="spinebench.algorithms.tasks.evaluate_custom_submission",
             acks_late=True, reject_on_worker_lost=True, max_retries=None)
def evaluate_custom_submission(self, *, submission_pk: int) -> str:
    """A custom phase's submission, scored by its evaluation image on a container worker: here, on the site's hosts
    (the scoring task's own path), or through the worker-token API on a remote host."""
    if not is_remote_worker():
        from spinebench.submissions.tasks import score_submission

        return score_submission.run(submission_pk=submission_pk)
    from .job_worker import ServerUnavailable, run_remote_evaluation
    from .remote_client import RemoteJobClient

    try:
        return run_remote_evaluation(RemoteJobClient.from_settings(), submission_pk)["outcome"]
    except ServerUnavailable:
        raise self.retry(countdown=settings.SPINEBENCH_ENGINE_RETRY_SECONDS) from None


@shared_task(name="spinebench.algorithms.tasks.score_algorithm_submission", acks_late=True,
             reject_on_worker_lost=True)
def score_algorithm_submission(*, submission_pk: int) -> str:
    """Score a run whose jobs a remote worker finished (its predictions are stored); once."""
    from . import execution

    return execution.score(submission_pk)


@shared_task(base=ContainerQueueTask, name="spinebench.algorithms.tasks.recover_container_jobs")
def recover_container_jobs() -> dict[str, int]:
    """Periodic: requeue runs of dead workers, remove orphan containers (schedule it beside the time-limit sweep). On
    a remote worker the site requeues and says which runs are live; the worker cleans its own engine."""
    if is_remote_worker():
        from .remote_client import recover_remote

        return recover_remote()
    from . import execution

    return execution.recover()
