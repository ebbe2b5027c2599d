"""What is stored on behalf of whom: every accepted upload is one `StoredUpload` row charged to one
`StorageAccount`, so the storage quota, deletion and (later) chunked resumable upload sessions all read one table.

This app sits below every domain app (challenges, submissions, algorithms...): it knows users and bytes, never
phases or submissions. An account is named by a key (`user:<pk>` for a participant's uploads, `challenge:<pk>` for
what organizers store for their challenge), so a higher app can charge a challenge without this app importing it.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StorageAccount(models.Model):
    """Whom stored bytes are charged to; its row is also the lock that makes the quota check race-free."""

    key = models.CharField(
        max_length=64, unique=True, help_text="`user:<pk>` (a person's uploads) or `challenge:<pk>` (organizers' data)."
    )
    quota_bytes = models.PositiveBigIntegerField(
        null=True, blank=True,
        help_text="Bytes this account may store; empty: the site default (SPINEBENCH_USER_STORAGE_QUOTA_BYTES for "
        "users, SPINEBENCH_CHALLENGE_STORAGE_QUOTA_BYTES for challenges).",
    )

    def __str__(self) -> str:
        return self.key


class StoredUpload(models.Model):
    class Kind(models.TextChoices):
        PREDICTIONS_CSV = "predictions_csv", "predictions CSV"
        PREDICTIONS_ZIP = "predictions_zip", "predictions zip (case folders)"
        ALGORITHM_ARCHIVE = "algorithm_archive", "algorithm archive (docker save)"
        DATASET = "dataset", "dataset archive"
        EVALUATION_IMAGE = "evaluation_image", "evaluation image"

    account = models.ForeignKey(StorageAccount, on_delete=models.PROTECT, related_name="uploads")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="stored_uploads",
        help_text="Who uploaded it (empty for files the platform stored itself).",
    )
    kind = models.CharField(max_length=32, choices=Kind.choices)
    size = models.PositiveBigIntegerField(help_text="Bytes on storage.")
    sha256 = models.CharField(max_length=64, help_text="Hex digest of the stored bytes, computed while receiving them.")
    storage_name = models.CharField(max_length=300, unique=True, help_text="Name in the default storage.")
    original_name = models.CharField(max_length=255, blank=True, help_text="The uploader's file name (display only).")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created", "-pk"]

    def __str__(self) -> str:
        return f"{self.kind} {self.storage_name} ({self.size} bytes)"
