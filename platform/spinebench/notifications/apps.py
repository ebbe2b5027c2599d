from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    """On-site notifications and their mail. It sits above submissions and challenges: it listens to their saves
    (signals.py); those apps never import it."""

    name = "spinebench.notifications"
    label = "notifications"
    verbose_name = "Notifications"

    def ready(self):
        from . import announcements, services, signals  # noqa: F401 - signals: connects the receivers
        from .tasks import send_announcement, send_notification_email

        services.register_mailer(lambda pk: send_notification_email.delay(notification_pk=pk))
        announcements.register_announcement_starter(lambda pk: send_announcement.delay(announcement_pk=pk))
