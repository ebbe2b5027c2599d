"""The one status state machine of every job kind (CSV scoring and algorithm containers alike):

    pending -> validating -> queued -> running -> scoring -> succeeded | failed | cancelled

CSV submissions skip `running` (queued -> scoring). `running`/`scoring` may go back to `queued` when a job is
requeued after its worker died. Every status change goes through `transition`, which refuses anything not listed
in ALLOWED; pages, the API and the tasks all read the same field.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Status(models.TextChoices):
    PENDING = "pending", "pending"
    VALIDATING = "validating", "validating"
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SCORING = "scoring", "scoring"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


ALLOWED: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset({Status.VALIDATING, Status.FAILED, Status.CANCELLED}),
    Status.VALIDATING: frozenset({Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.QUEUED: frozenset({Status.RUNNING, Status.SCORING, Status.FAILED, Status.CANCELLED}),
    Status.RUNNING: frozenset({Status.SCORING, Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.SCORING: frozenset({Status.SUCCEEDED, Status.QUEUED, Status.FAILED, Status.CANCELLED}),
    Status.SUCCEEDED: frozenset(),
    Status.FAILED: frozenset(),
    Status.CANCELLED: frozenset(),
}
TERMINAL = frozenset(status for status, targets in ALLOWED.items() if not targets)
ACTIVE = frozenset(ALLOWED) - TERMINAL
#: Statuses that count against a participant's submission limit (failed and cancelled do not).
COUNTED = frozenset(ALLOWED) - {Status.FAILED, Status.CANCELLED}


class TransitionError(RuntimeError):
    """A status change the state machine does not allow."""


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def transition(job, target: str, *, error: str | None = None, save: bool = True) -> None:
    """Move `job` (any model with `status`, `status_changed_at` and `error_message` fields) to `target`.
    The caller holds the row lock (select_for_update) when the change races with a task."""
    if not can_transition(job.status, target):
        raise TransitionError(f"{type(job).__name__} {job.pk}: {job.status} -> {target} is not allowed")
    job.status = target
    job.status_changed_at = timezone.now()
    fields = ["status", "status_changed_at"]
    if error is not None:
        job.error_message = error
        fields.append("error_message")
    if save:
        job.save(update_fields=fields)
