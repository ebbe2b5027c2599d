"""Worker heartbeats and the one question pages ask of them: is this queue served by a live worker right now?
Judged from what the workers record (their own heartbeats, or a remote host's through the worker-token API), never
from what the web process itself can reach."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import metadata

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinebench.celery import QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU

from .models import Requeue, WorkerHeartbeat


def platform_version() -> str:
    try:
        return metadata.version("spinebench")
    except metadata.PackageNotFoundError:  # running from a source tree that was never installed
        return ""


def record_heartbeat(*, hostname: str, queues: list[str], pid: int = 0, version: str = "",
                     started: datetime | None = None, now: datetime | None = None) -> WorkerHeartbeat:
    """Create or renew the heartbeat of worker `hostname`. `started` is kept from the first beat of a run unless a
    new one is given (a restarted worker gives its new start time, which also clears `stopped`)."""
    if not hostname or len(hostname) > 255:
        raise ValueError("a worker's hostname is 1 to 255 characters")
    now = now or timezone.now()
    queues = sorted({str(queue)[:200] for queue in queues})
    with transaction.atomic():
        beat = WorkerHeartbeat.objects.select_for_update().filter(hostname=hostname).first()
        if beat is None:
            return WorkerHeartbeat.objects.create(hostname=hostname, queues=queues, pid=pid, version=version,
                                                  started=started or now, last_seen=now)
        beat.queues, beat.pid, beat.version, beat.last_seen = queues, pid, version, now
        if started is not None and started != beat.started:
            beat.started, beat.stopped = started, None
        beat.save()
        return beat


def record_shutdown(*, hostname: str, now: datetime | None = None) -> None:
    """A worker stopping cleanly: its queues are no longer served by it from now on."""
    WorkerHeartbeat.objects.filter(hostname=hostname).update(stopped=now or timezone.now())


def live_workers(*, within_s: float | None = None, now: datetime | None = None) -> list[WorkerHeartbeat]:
    within_s = settings.SPINEBENCH_WORKER_ALIVE_S if within_s is None else within_s
    now = now or timezone.now()
    return list(WorkerHeartbeat.objects.filter(last_seen__gte=now - timedelta(seconds=within_s), stopped__isnull=True))


def queue_is_served(queue: str, *, within_s: float | None = None, now: datetime | None = None) -> bool:
    """True when a worker consuming `queue` was seen within `within_s` seconds (default SPINEBENCH_WORKER_ALIVE_S).
    With tasks run in-process (the test settings) every queue is served by the process itself."""
    from spinebench.celery import app

    if app.conf.task_always_eager:
        return True
    return any(queue in beat.queues for beat in live_workers(within_s=within_s, now=now))


def phase_queue(phase) -> str | None:
    """The container queue an algorithm phase's submissions run on, and a custom phase's (its evaluation image runs
    there); None for other phases scored from uploaded files (those wait in the scoring queue and are scored
    whenever a worker is back)."""
    if phase.submission_kind != "algorithm":
        return QUEUE_CONTAINERS_CPU if phase.task == "custom" else None
    return QUEUE_CONTAINERS_GPU if phase.requires_gpu else QUEUE_CONTAINERS_CPU


def phase_unserved_message(phase) -> str:
    """The participant-facing reason an algorithm (or custom) phase takes no upload now, or "" when it does."""
    queue = phase_queue(phase)
    if queue is None or queue_is_served(queue):
        return ""
    kind = "GPU" if queue == QUEUE_CONTAINERS_GPU else "CPU"
    return (f"No {kind} container worker is running for this phase right now, so algorithm uploads are closed; "
            "try again later (the organizers can see the workers' state).")


def note_requeue(*, kind: str, object_id: int, now: datetime | None = None) -> int:
    """Count one more requeue of a job; returns how many there have been, this one included."""
    now = now or timezone.now()
    with transaction.atomic():
        record, _ = Requeue.objects.select_for_update().get_or_create(
            kind=kind, object_id=object_id, defaults={"last_at": now})
        record.count += 1
        record.last_at = now
        record.save(update_fields=["count", "last_at"])
        return record.count


def requeue_count(*, kind: str, object_id: int) -> int:
    return Requeue.objects.filter(kind=kind, object_id=object_id).values_list("count", flat=True).first() or 0


def prune(*, now: datetime | None = None, keep_days: int = 7) -> dict[str, int]:
    """Forget workers not seen for a week and requeue counts of a week ago."""
    cutoff = (now or timezone.now()) - timedelta(days=keep_days)
    workers, _ = WorkerHeartbeat.objects.filter(last_seen__lt=cutoff).delete()
    requeues, _ = Requeue.objects.filter(last_at__lt=cutoff).delete()
    return {"workers": workers, "requeues": requeues}
