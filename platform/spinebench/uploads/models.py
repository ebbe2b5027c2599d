"""What is stored on behalf of whom: every accepted upload is one `StoredUpload` row charged to one
`StorageAccount`, so the storage quota, deletion and (later) chunked resumable upload sessions all read one table.

This app sits below every domain app (challenges, submissions, algorithms...): it knows users and bytes, never
phases or submissions. An account is named by a key (`user:<pk>` for a participant's uploads, `challenge:<pk>` for
what organizers store for their challenge), so a higher app can charge a challenge without this app importing it.
"""

from __future__ import annotations

import uuid

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


class UploadSession(models.Model):
    """A resumable chunked upload (create -> PUT chunks at the current offset -> finalise). Its bytes grow in a
    partial file (spinebench.uploads.chunked.partial_path) until finalise checks the declared sha256 and stores
    them as one StoredUpload; a second upload of the same bytes by the same account reuses that one."""

    class Status(models.TextChoices):
        OPEN = "open", "receiving chunks"
        COMPLETE = "complete", "stored"
        FAILED = "failed", "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_sessions")
    account_key = models.CharField(max_length=64, help_text="The storage account the finished upload is charged to.")
    kind = models.CharField(max_length=32, choices=StoredUpload.Kind.choices)
    size = models.PositiveBigIntegerField(help_text="Declared total size in bytes.")
    sha256 = models.CharField(max_length=64, help_text="Declared hex sha256 of the whole file, checked at finalise.")
    original_name = models.CharField(max_length=255, blank=True, help_text="The uploader's file name (display only).")
    offset = models.PositiveBigIntegerField(default=0, help_text="Bytes received and verified so far.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    error = models.CharField(max_length=300, blank=True, help_text="Why the session failed.")
    stored = models.ForeignKey(
        StoredUpload, on_delete=models.SET_NULL, null=True, blank=True, related_name="sessions",
        help_text="The stored file once complete (possibly an earlier identical upload of the same account).",
    )
    stored_here = models.BooleanField(default=False, help_text="This session's bytes became `stored` (no dedupe).")
    consumed_at = models.DateTimeField(
        null=True, blank=True, help_text="When a consumer (a submission) took the stored file."
    )
    created = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(help_text="An open session untouched until then is swept away with its bytes.")

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"upload session {self.id} ({self.kind}, {self.offset}/{self.size} bytes, {self.status})"
