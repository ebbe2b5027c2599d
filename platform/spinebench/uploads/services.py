"""Storing an accepted upload and charging it to a storage account; deleting it again. Callers validate first
(quarantined bytes never reach storage unless valid) and store last; the quota is checked under the account's row
lock, so two uploads at the same moment cannot both slip under it."""

from __future__ import annotations

import hashlib
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum

from .limits import UploadLimit, UploadRefused, human_size
from .models import StorageAccount, StoredUpload

HASH_CHUNK = 1 << 16


def user_account_key(user) -> str:
    return f"user:{user.pk}"


def challenge_account_key(challenge_pk: int) -> str:
    """Organizers' datasets and evaluation images are charged to their challenge, not to one organizer."""
    return f"challenge:{challenge_pk}"


def quota_bytes(account: StorageAccount) -> int:
    if account.quota_bytes is not None:
        return account.quota_bytes
    if account.key.startswith("challenge:"):
        return settings.SPINEBENCH_CHALLENGE_STORAGE_QUOTA_BYTES
    return settings.SPINEBENCH_USER_STORAGE_QUOTA_BYTES


def used_bytes(account: StorageAccount) -> int:
    return account.uploads.aggregate(total=Sum("size"))["total"] or 0


def _account(key: str, *, lock: bool) -> StorageAccount:
    account, _ = StorageAccount.objects.get_or_create(key=key)
    return StorageAccount.objects.select_for_update().get(pk=account.pk) if lock else account


def _display_name(upload) -> str:
    return (getattr(upload, "name", "") or "upload").replace("\\", "/").rsplit("/", 1)[-1][:255]


def check_upload_size(upload, *, limit: UploadLimit) -> None:
    """For uploads that did not stream through LimitedUploadHandler (tests, the CLI): refuse before storing."""
    size = upload.size or 0
    if size > limit.bytes:
        raise UploadRefused(
            f"{_display_name(upload)}: the file is {human_size(size)}, over {limit.describe()}; nothing was stored.",
            code="too_large", limit_bytes=limit.bytes,
        )


def check_quota(*, account_key: str, size: int, lock: bool = False) -> None:
    """Raise UploadRefused(code="quota") when storing `size` more bytes would pass the account's quota."""
    account = _account(account_key, lock=lock)
    quota, used = quota_bytes(account), used_bytes(account)
    if used + size > quota:
        raise UploadRefused(
            f"Storing this upload ({human_size(size)}) would pass your storage quota of {human_size(quota)} "
            f"({human_size(used)} in use); nothing was stored.",
            code="quota", limit_bytes=quota,
        )


def _sha256(upload) -> str:
    digest = getattr(upload, "sha256", "")
    if digest:
        return digest
    hasher = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(HASH_CHUNK):
        hasher.update(chunk)
    upload.seek(0)
    return hasher.hexdigest()


def store_upload(*, upload, account_key: str, owner, kind: str, folder: str, suffix: str = "") -> StoredUpload:
    """Save a validated upload under `folder/<random><suffix>` in the default storage and record it; raises
    UploadRefused when it would pass the quota (nothing stored then). The participant's file name never becomes a
    path."""
    size = upload.size or 0
    with transaction.atomic():
        check_quota(account_key=account_key, size=size, lock=True)
        sha256 = _sha256(upload)
        upload.seek(0)
        name = default_storage.save(f"{folder.strip('/')}/{uuid.uuid4().hex}{suffix}", upload)
        try:
            return StoredUpload.objects.create(
                account=_account(account_key, lock=False), owner=owner, kind=kind, size=size, sha256=sha256,
                storage_name=name, original_name=_display_name(upload),
            )
        except BaseException:
            default_storage.delete(name)
            raise


def discard(storage_name: str) -> None:
    """Delete a stored file and its record (a no-op for names already gone)."""
    if storage_name:
        default_storage.delete(storage_name)
        StoredUpload.objects.filter(storage_name=storage_name).delete()
