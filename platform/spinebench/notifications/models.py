"""A notification is stored first and mailed afterwards by a task: a failing mail server delays or fails the mail
(recorded in `email_error`), never the notification itself."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .kinds import Kind


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Plain text, shown on the site and in the mail.")
    link = models.CharField(max_length=500, blank=True, help_text="A path on this site (e.g. the submission page).")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    email_error = models.TextField(blank=True, help_text="Why the mail was not sent after the last try.")

    class Meta:
        ordering = ["-created", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: {self.title}"


class EmailPreference(models.Model):
    """One row per (user, kind) the user has switched off for email; no row means the kind is mailed."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="muted_email_kinds")
    kind = models.CharField(max_length=40, choices=Kind.choices)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_email_mute_per_user_kind")]

    def __str__(self) -> str:
        return f"{self.user_id} mutes {self.kind} mail"


class PhaseReminder(models.Model):
    """One row per (user, phase) whose closing reminder was made: the reminder is sent once, however often the
    periodic task runs and whatever the phase's dates become later."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="phase_reminders")
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="closing_reminders")
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "phase"], name="one_closing_reminder_per_user_phase")]

    def __str__(self) -> str:
        return f"closing reminder of phase {self.phase_id} for {self.user_id}"
