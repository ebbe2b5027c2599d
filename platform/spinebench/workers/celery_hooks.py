"""Hooks into every Celery worker process of this project (connected once, from WorkersConfig.ready):

- a heartbeat (on a remote worker host, posted to the worker-token API instead): when the worker is ready it
  records itself (node name, the queues it can serve, pid, start time) and
  renews the record every SPINEBENCH_HEARTBEAT_INTERVAL_S from the worker's own timer, so a worker that is busy
  with a long task still beats (its pool child works, the parent beats); a clean shutdown marks it stopped. A
  container queue counts only while the worker's own container engine answers: a worker consuming
  `containers-cpu` on a host without a reachable engine would only fail every run;
- capped torch threads: SPINEBENCH_TORCH_THREADS > 0 caps torch in each pool process (the baselines worker sets it
  so training leaves cores to scoring);
- a warm-up: each pool process imports the evaluators before its first task. Scoring runs inside a transaction (on
  SQLite: holding the database's write lock), and a first import of the evaluators takes seconds on a busy host;
  done here, no request waits for it."""

from __future__ import annotations

import logging
import os

from celery import signals
from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)
_state: dict = {}


def connect() -> None:
    signals.worker_ready.connect(_on_worker_ready, weak=False, dispatch_uid="spinebench.workers.ready")
    signals.worker_shutdown.connect(_on_worker_shutdown, weak=False, dispatch_uid="spinebench.workers.shutdown")
    signals.worker_process_init.connect(_cap_torch_threads, weak=False, dispatch_uid="spinebench.workers.torch")
    signals.worker_process_init.connect(_warm_up, weak=False, dispatch_uid="spinebench.workers.warm_up")


def _warm_up(**_) -> None:
    import evaluators.tasks  # noqa: F401 - the import is the point
    import spinebench.leaderboards.services  # noqa: F401


def served_queues(consumed) -> list[str]:
    """The queues among `consumed` this worker can serve now: container queues only while its engine answers."""
    from spinebench.celery import QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU

    containers = {QUEUE_CONTAINERS_CPU, QUEUE_CONTAINERS_GPU}
    if not containers & set(consumed):
        return sorted(consumed)
    from spinebench.algorithms.runner import engine_available

    return sorted(consumed) if engine_available() else sorted(set(consumed) - containers)


def _remote():
    """The job client of a remote worker host (settings.remote_worker), or None on the site's own hosts."""
    if not getattr(settings, "SPINEBENCH_JOB_SERVER", ""):
        return None
    if "remote" not in _state:
        from spinebench.algorithms.remote_client import RemoteJobClient

        _state["remote"] = RemoteJobClient.from_settings()
    return _state["remote"]


def _beat() -> None:
    from . import services

    try:
        queues = served_queues(_state["consumed"])
        if queues != _state.get("served"):
            logger.log(logging.INFO if queues == sorted(_state["consumed"]) else logging.WARNING,
                       "%s serves %s (consumes %s; container queues need a reachable engine)",
                       _state["hostname"], ",".join(queues) or "nothing", ",".join(_state["consumed"]))
            _state["served"] = queues
        if _remote() is not None:  # a remote worker host: no database here; the site records it
            _remote().heartbeat(hostname=_state["hostname"], queues=queues, pid=os.getpid(),
                                version=_state["version"], started=_state["started"].isoformat())
        else:
            services.record_heartbeat(hostname=_state["hostname"], queues=queues, pid=os.getpid(),
                                      version=_state["version"], started=_state["started"])
    except Exception:  # a locked or restarting database: the next beat tries again; the worker must not die
        logger.exception("could not record the heartbeat of %s", _state.get("hostname"))
    finally:
        # The timer may run in its own thread, and pool children are forked from this process: never leave a
        # database connection open between beats.
        connection.close()


def _on_worker_ready(sender=None, **_) -> None:
    from . import services

    consumer = sender
    _state.update(
        hostname=consumer.hostname,
        consumed=sorted(consumer.app.amqp.queues.consume_from),
        started=timezone.now(),
        version=services.platform_version(),
    )
    _beat()
    consumer.timer.call_repeatedly(settings.SPINEBENCH_HEARTBEAT_INTERVAL_S, _beat)
    logger.info("heartbeat of %s every %s s", _state["hostname"], settings.SPINEBENCH_HEARTBEAT_INTERVAL_S)


def _on_worker_shutdown(sender=None, **_) -> None:
    from . import services

    if "hostname" not in _state:
        return
    try:
        if _remote() is not None:
            _remote().heartbeat(hostname=_state["hostname"], queues=[], pid=os.getpid(), version=_state["version"],
                                started=_state["started"].isoformat(), stopped=True)
        else:
            services.record_shutdown(hostname=_state["hostname"])
    except Exception:
        logger.exception("could not record the shutdown of %s", _state["hostname"])
    finally:
        connection.close()


def _cap_torch_threads(**_) -> None:
    threads = settings.SPINEBENCH_TORCH_THREADS
    if threads <= 0:
        return
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)
