from django.apps import AppConfig


class WorkersConfig(AppConfig):
    """Celery workers as the platform sees them: heartbeats (is a queue served?), requeue counts of the sweeps, and
    the embedded broker's folders."""

    name = "spinebench.workers"
    label = "workers"

    def ready(self) -> None:
        from . import broker, celery_hooks

        broker.ensure_folders()
        celery_hooks.connect()
