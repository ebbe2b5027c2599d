"""Teams of a challenge: the team, its members, invitations and the organizers' per-challenge team settings.

A user is in at most one team per challenge (a database constraint on Membership(challenge, user); the challenge is
stored on the membership so that the database itself can hold the rule)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class TeamSettings(models.Model):
    """What an organizer decides about teams of one challenge (no row: the defaults below)."""

    challenge = models.OneToOneField(
        "challenges.Challenge", on_delete=models.CASCADE, related_name="team_settings"
    )
    max_team_size = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Most members a team of this challenge may have (empty: no cap). Lowering it never removes "
        "members; a team above the cap accepts nobody new.",
    )

    class Meta:
        verbose_name_plural = "team settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(max_team_size__isnull=True) | Q(max_team_size__gte=1), name="teams_max_size_at_least_one"
            )
        ]

    def __str__(self) -> str:
        return f"team settings of {self.challenge_id}"


class Team(models.Model):
    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100, help_text="Shown on the leaderboard as the team's one entry.")
    leader = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="led_teams",
        help_text="The member who invites and may hand leadership on (empty once every member left).",
    )
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["challenge", "name"]
        constraints = [models.UniqueConstraint(fields=["challenge", "name"], name="teams_name_unique_in_challenge")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("teams:detail", kwargs={"pk": self.pk})


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    challenge = models.ForeignKey(
        "challenges.Challenge",
        on_delete=models.CASCADE,
        related_name="team_memberships",
        help_text="The team's challenge, repeated so that the database holds one team per user and challenge.",
    )
    joined = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["joined", "pk"]
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="teams_one_team_per_challenge")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.team}"


class Invitation(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        ACCEPTED = "accepted", "accepted"
        DECLINED = "declined", "declined"
        WITHDRAWN = "withdrawn", "withdrawn"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    invitee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_invitations")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="sent_team_invitations"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    created = models.DateTimeField(auto_now_add=True)
    responded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "invitee"], condition=Q(status="pending"), name="teams_one_pending_invitation"
            )
        ]

    def __str__(self) -> str:
        return f"invitation of {self.invitee_id} to {self.team} ({self.status})"
