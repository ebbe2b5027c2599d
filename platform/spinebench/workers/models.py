"""What the platform knows about its Celery workers. Rows are written by the workers themselves (celery_hooks) or,
for remote worker hosts, by the worker-token API through services.record_heartbeat."""

from django.db import models


class WorkerHeartbeat(models.Model):
    """One Celery worker (its node name, e.g. `scoring@host`). `last_seen` is renewed every
    SPINEBENCH_HEARTBEAT_INTERVAL_S while the worker lives; a worker killed outright just stops renewing it, one
    stopped cleanly sets `stopped`."""

    hostname = models.CharField(max_length=255, unique=True)
    queues = models.JSONField(default=list, help_text="The queues this worker consumes.")
    pid = models.PositiveIntegerField(default=0)
    version = models.CharField(max_length=64, blank=True)
    started = models.DateTimeField()
    last_seen = models.DateTimeField(db_index=True)
    stopped = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("hostname",)

    def __str__(self) -> str:
        return f"{self.hostname} ({', '.join(self.queues)})"


class Requeue(models.Model):
    """How many times a sweep handed one job (a submission, ...) to a new worker because its lease expired: the
    sweep fails the job with a reason once this reaches SPINEBENCH_MAX_REQUEUES instead of looping forever on a job
    that kills its worker."""

    kind = models.CharField(max_length=64)
    object_id = models.PositiveBigIntegerField()
    count = models.PositiveIntegerField(default=0)
    last_at = models.DateTimeField()

    class Meta:
        constraints = (models.UniqueConstraint(fields=("kind", "object_id"), name="workers_requeue_unique_job"),)

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id}: requeued {self.count}x"
