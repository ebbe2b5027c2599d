"""The notification kinds: each one can be switched off for email separately (on-site notifications always stay)."""

from django.db import models


class Kind(models.TextChoices):
    SUBMISSION_SUCCEEDED = "submission_succeeded", "A submission of mine finished"
    SUBMISSION_FAILED = "submission_failed", "A submission of mine failed"
    REGISTRATION_APPROVED = "registration_approved", "My registration for a challenge was approved"
    REGISTRATION_REJECTED = "registration_rejected", "My registration for a challenge was rejected"
    TEAM_INVITATION = "team_invitation", "I was invited to join a team"
