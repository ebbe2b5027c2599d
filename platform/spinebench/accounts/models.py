"""The one API token model: the secret is shown once and only its sha256 is stored, so a database leak gives no
usable token; every token expires, and a `worker` token (a site's remote worker host) reaches only worker endpoints."""

from __future__ import annotations

import hashlib
import re

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


def hash_secret(secret: str) -> str:
    """sha256 hex digest: the secret has 256 random bits, so a plain fast hash is enough (no salt, no stretching)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self, *, now=None):
        now = now or timezone.now()
        return self.filter(revoked__isnull=True, expires__gt=now)


class ApiToken(models.Model):
    class Kind(models.TextChoices):
        USER = "user", "User (acts as its owner)"
        WORKER = "worker", "Worker (a remote worker host; worker endpoints only)"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        help_text="The owner of a user token; empty for a worker token, which belongs to the site.",
    )
    name = models.CharField(max_length=100, help_text="What the token is for, so its owner can tell tokens apart.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.USER)
    key_hash = models.CharField(max_length=64, unique=True, editable=False, help_text="sha256 of the secret.")
    prefix = models.CharField(
        max_length=8, editable=False, help_text="The secret's first characters, shown to tell tokens apart."
    )
    created = models.DateTimeField(default=timezone.now, editable=False)
    last_used = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Updated at most once a minute per token."
    )
    expires = models.DateTimeField(help_text="The token stops working at this time (at most a year after creation).")
    revoked = models.DateTimeField(
        null=True, blank=True, help_text="When the token was revoked; a revoked token never works again."
    )

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind="user", user__isnull=False) | Q(kind="worker", user__isnull=True),
                name="accounts_apitoken_user_iff_user_kind",
            ),
            models.CheckConstraint(
                condition=Q(expires__gt=models.F("created")), name="accounts_apitoken_expires_after_created"
            ),
        ]

    def __str__(self) -> str:
        owner = self.user.get_username() if self.user is not None else "site"
        return f"{self.name} ({self.kind}, {owner}, {self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires <= timezone.now()

    @property
    def is_active(self) -> bool:
        return self.revoked is None and not self.is_expired


ORCID_RE = r"^\d{4}-\d{4}-\d{4}-\d{3}[\dX]$"
GITHUB_RE = r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$"


def validate_orcid(value: str) -> None:
    """Shape and ISO 7064 11-2 check digit: a typo in an ORCID iD is caught here, not by a dead link later."""
    from django.core.exceptions import ValidationError

    if not re.match(ORCID_RE, value or ""):
        raise ValidationError("An ORCID iD looks like 0000-0002-1825-0097 (four groups of four characters).")
    digits = value.replace("-", "")
    total = 0
    for char in digits[:-1]:
        total = (total + int(char)) * 2
    check = (12 - total % 11) % 11
    expected = "X" if check == 10 else str(check)
    if digits[-1] != expected:
        raise ValidationError("This ORCID iD's check digit does not match; please copy it again from orcid.org.")


def validate_github(value: str) -> None:
    from django.core.exceptions import ValidationError

    if not re.match(GITHUB_RE, value or ""):
        raise ValidationError("A GitHub username has letters, digits and single hyphens (at most 39 characters).")


class Profile(models.Model):
    """What a participant tells about themself, and whether their email address is verified. Created on demand
    (`profile_for`), so accounts made before profiles existed keep working."""

    class LeaderboardName(models.TextChoices):
        USERNAME = "username", "My username only"
        PROFILE = "profile", "My display name and affiliation"

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    display_name = models.CharField(max_length=100, blank=True)
    affiliation = models.CharField(max_length=200, blank=True)
    website = models.URLField(blank=True, help_text="https://...")
    orcid = models.CharField(max_length=19, blank=True, validators=[validate_orcid], verbose_name="ORCID iD")
    github = models.CharField(max_length=39, blank=True, validators=[validate_github], verbose_name="GitHub username")
    show_on_leaderboards = models.CharField(
        max_length=10,
        choices=LeaderboardName.choices,
        default=LeaderboardName.USERNAME,
        help_text="What leaderboards show for your entries.",
    )
    verified_email = models.EmailField(
        blank=True, help_text="The address that was verified; a verification holds only while it is the account's."
    )
    email_verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"profile of {self.user.get_username()}"

    @property
    def leaderboard_name(self) -> str:
        if self.show_on_leaderboards == self.LeaderboardName.PROFILE and self.display_name:
            return f"{self.display_name} ({self.affiliation})" if self.affiliation else self.display_name
        return self.user.get_username()
