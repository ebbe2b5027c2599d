from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """On-site notifications and their mail. It sits above submissions and challenges: it listens to their saves
    (signals.py); those apps never import it."""

    name = "spinebench.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import signals  # noqa: F401
