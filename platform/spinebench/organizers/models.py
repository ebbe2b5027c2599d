"""The organizers app's models: the audit trail of organizer actions."""

from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One action of an organizer (or a site operator) on a challenge: who, when, what, on which object, and for an
    edit the fields that changed with their values before and after. Never edited or deleted through the site."""

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="audit_events")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, help_text="The actor's username when it acted (kept if deleted).")
    action = models.CharField(max_length=64, db_index=True)
    target = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="field → [before, after]")
    note = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ("-created", "-pk")

    def __str__(self) -> str:
        return f"{self.created:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.target}".strip()
