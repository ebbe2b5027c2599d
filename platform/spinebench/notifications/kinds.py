"""The notification kinds: each one can be switched off for email separately (on-site notifications always stay)."""

from django.db import models


class Kind(models.TextChoices):
    SUBMISSION_SUCCEEDED = "submission_succeeded", "A submission of mine finished"
    SUBMISSION_FAILED = "submission_failed", "A submission of mine failed"
    REGISTRATION_APPROVED = "registration_approved", "My registration for a challenge was approved"
    REGISTRATION_REJECTED = "registration_rejected", "My registration for a challenge was rejected"
    PHASE_CLOSING = "phase_closing", "A phase of a challenge I take part in closes within 24 hours"
    TEAM_INVITATION = "team_invitation", "I was invited to join a team"
    TEAM_INVITATION_ANSWERED = "team_invitation_answered", "Someone accepted or declined an invitation to my team"
    ANNOUNCEMENT = "announcement", "The organizers of a challenge I take part in posted an announcement"
