"""Resumable chunked uploads on the one upload path: create a session (kind, declared size and sha256; the kind's size
cap and the storage quota are checked here, before a byte arrives) -> write chunks strictly at the session's offset
(each verified against its own sha256 before the offset moves) -> finalise (the whole file's sha256 must equal the
declared one; then it is stored once, through `services.store_upload`, charged to the account) -> a consumer (a
submission) claims the stored file. An account that uploads the same bytes again gets its earlier stored file back:
at create when the declared digest is already stored (no byte needs to travel), else at finalise.

Rules a client relies on:
- a chunk is accepted only at the current offset: an earlier offset (overlap, a retried chunk already counted) or a
  later one (a gap) is refused with the current offset, which is where a client resumes;
- a chunk is at most SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES and never passes the declared size;
- a chunk whose bytes do not hash to the sha256 its client sent is refused and leaves the offset where it was;
- one chunk at a time per session (an exclusive lock on the partial file; a second writer is told to retry).

Partial bytes live in a local folder (SPINEBENCH_UPLOAD_SESSIONS_DIR, default a hidden folder of MEDIA_ROOT), never
in the storage the finished files go to. `sweep_expired` (a beat task) removes sessions left untouched past their
expiry with their bytes, and a finished upload nobody claimed.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from .limits import UploadLimit, UploadRefused, human_size
from .models import StoredUpload, UploadSession
from .services import check_quota, discard, store_upload, user_account_key

PIECE = 1 << 16
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
#: Kinds a session may carry (a predictions CSV is small: it travels in one request) and the setting capping each.
SESSION_KINDS: dict[str, str] = {
    StoredUpload.Kind.ALGORITHM_ARCHIVE: "SPINEBENCH_MAX_ALGORITHM_ARCHIVE_BYTES",
    StoredUpload.Kind.EVALUATION_IMAGE: "SPINEBENCH_MAX_ALGORITHM_ARCHIVE_BYTES",
    StoredUpload.Kind.DATASET: "SPINEBENCH_MAX_DATASET_ARCHIVE_BYTES",
    StoredUpload.Kind.PREDICTIONS_ZIP: "SPINEBENCH_MAX_PREDICTIONS_ZIP_BYTES",
}
ARCHIVE_SUFFIXES = (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar")


class SessionError(Exception):
    """A refused request on a session. `field` names what was wrong (a request field or header) for a field-keyed
    answer; `code` is for clients; `status` the HTTP status; `offset` the session's offset where resuming matters
    (answered as `upload_offset`)."""

    def __init__(self, message: str, *, code: str, field: str = "detail", status: int = 400,
                 offset: int | None = None):
        super().__init__(message)
        self.code, self.field, self.status, self.offset = code, field, status, offset

    def as_dict(self) -> dict:
        """`detail` and `code` always; the message again under the field it is about; `upload_offset` (as in the
        Upload-Offset header) where the client should resume."""
        payload: dict[str, object] = {"detail": str(self), "code": self.code}
        if self.field != "detail":
            payload[self.field] = [str(self)]
        if self.offset is not None:
            payload["upload_offset"] = self.offset
        return payload


def size_cap(kind: str) -> UploadLimit:
    return UploadLimit(bytes=getattr(settings, SESSION_KINDS[kind]), owner=f"the site's {kind.replace('_', ' ')}")


def chunk_cap() -> int:
    return settings.SPINEBENCH_UPLOAD_CHUNK_MAX_BYTES


def sessions_dir() -> Path:
    folder = Path(settings.SPINEBENCH_UPLOAD_SESSIONS_DIR or Path(settings.MEDIA_ROOT) / ".upload-sessions")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def partial_path(session: UploadSession) -> Path:
    """Named by the session's random UUID, never by anything the uploader chose."""
    return sessions_dir() / f"{session.id}.part"


def _lifetime() -> timedelta:
    return timedelta(hours=settings.SPINEBENCH_UPLOAD_SESSION_HOURS)


def _suffix(kind: str, name: str) -> str:
    """The stored name's suffix, which readers go by: `.zip` for zips whatever the uploader called them; an
    archive keeps its known compression suffix (`.tar` otherwise; the loaders detect compression by content)."""
    if kind in (StoredUpload.Kind.PREDICTIONS_ZIP, StoredUpload.Kind.DATASET):
        return ".zip"
    lowered = name.lower()
    return next((suffix for suffix in ARCHIVE_SUFFIXES if lowered.endswith(suffix)), ".tar")


def _stored_copy(*, account_key: str, kind: str, sha256: str, size: int) -> StoredUpload | None:
    return StoredUpload.objects.filter(
        account__key=account_key, kind=kind, sha256=sha256, size=size
    ).order_by("pk").first()


def reserved_bytes(account_key: str, *, now: datetime | None = None) -> int:
    """Bytes promised to the account's open, unexpired sessions: counted against the quota at create, so many
    sessions cannot together pass it."""
    live = UploadSession.objects.filter(
        account_key=account_key, status=UploadSession.Status.OPEN, expires_at__gt=now or timezone.now()
    )
    return live.aggregate(total=Sum("size"))["total"] or 0


def open_session(*, owner, kind: str, size: int, sha256: str, original_name: str = "",
                 account_key: str | None = None) -> UploadSession:
    """A new session, or SessionError (field-keyed) / UploadRefused (too large, over the quota). When the account
    already stores these bytes the session is complete at once and points at that file."""
    if kind not in SESSION_KINDS:
        allowed = ", ".join(sorted(SESSION_KINDS))
        raise SessionError(f"kind must be one of {allowed}.", code="invalid", field="kind")
    sha256 = (sha256 or "").strip().lower()
    if not SHA256_HEX.match(sha256):
        raise SessionError("sha256 must be the file's SHA-256 as 64 hex digits.", code="invalid", field="sha256")
    if not isinstance(size, int) or size <= 0:
        raise SessionError("size must be the file's size in bytes, at least 1.", code="invalid", field="size")
    cap = size_cap(kind)
    if size > cap.bytes:
        raise UploadRefused(f"The file is {human_size(size)}, over {cap.describe()}; nothing was stored.",
                            code="too_large", limit_bytes=cap.bytes)
    account_key = account_key or user_account_key(owner)
    name = (original_name or "").replace("\\", "/").rsplit("/", 1)[-1][:255]
    now = timezone.now()
    fields = dict(owner=owner, account_key=account_key, kind=kind, size=size, sha256=sha256, original_name=name,
                  expires_at=now + _lifetime())
    with transaction.atomic():
        existing = _stored_copy(account_key=account_key, kind=kind, sha256=sha256, size=size)
        if existing is not None:
            return UploadSession.objects.create(
                **fields, offset=size, status=UploadSession.Status.COMPLETE, stored=existing
            )
        check_quota(account_key=account_key, size=size + reserved_bytes(account_key, now=now), lock=True)
        session = UploadSession.objects.create(**fields)
    partial_path(session).touch()
    return session


def write_chunk(*, session: UploadSession, offset: int | None, length: int | None, chunk_sha256: str,
                read: Callable[[int], bytes]) -> int:
    """Append `length` bytes read through `read` at `offset` if they hash to `chunk_sha256`; the new offset.
    Memory stays at one PIECE whatever the chunk size: bytes go to the partial file while they are hashed, and a
    refused chunk is cut off again before the offset moves."""
    _check_writable(session)
    if offset is None:
        raise SessionError("Say where this chunk starts: a Content-Range header (bytes START-END/TOTAL) or ?offset=.",
                           code="offset_required", field="offset", offset=session.offset)
    if not length:
        raise SessionError("A chunk needs a Content-Length of at least 1 byte.", code="length_required",
                           field="Content-Length", offset=session.offset)
    if length > chunk_cap():
        raise SessionError(f"A chunk may be at most {human_size(chunk_cap())}; this one is {human_size(length)}.",
                           code="chunk_too_large", field="Content-Length", status=413, offset=session.offset)
    if offset + length > session.size:
        raise SessionError(f"This chunk ends at byte {offset + length}, past the declared size of {session.size}.",
                           code="past_declared_size", field="Content-Length", status=413, offset=session.offset)
    chunk_sha256 = (chunk_sha256 or "").strip().lower()
    if not SHA256_HEX.match(chunk_sha256):
        raise SessionError("Send the chunk's SHA-256 (64 hex digits) in the Upload-Chunk-SHA256 header.",
                           code="chunk_checksum_required", field="Upload-Chunk-SHA256", offset=session.offset)
    path = partial_path(session)
    with _locked(path, offset=session.offset) as handle:
        current = UploadSession.objects.values_list("offset", flat=True).get(pk=session.pk)
        if offset != current:
            raise SessionError(
                f"This session has {current} bytes; a chunk must start there, not at {offset} (resume from "
                f"{current}).", code="offset_mismatch", status=409, offset=current)
        handle.seek(offset)
        digest, remaining = hashlib.sha256(), length
        while remaining:
            piece = read(min(PIECE, remaining))
            if not piece:
                handle.truncate(offset)
                raise SessionError(f"The chunk ended after {length - remaining} of its {length} bytes; send it "
                                   "again.", code="incomplete_chunk", field="Content-Length", offset=offset)
            digest.update(piece)
            handle.write(piece)
            remaining -= len(piece)
        if digest.hexdigest() != chunk_sha256:
            handle.truncate(offset)
            raise SessionError("The chunk's bytes do not match its Upload-Chunk-SHA256 (corrupted on the way?); "
                               "it was not kept. Send it again.", code="chunk_checksum", field="Upload-Chunk-SHA256",
                               offset=offset)
        handle.truncate(offset + length)
        handle.flush()
        UploadSession.objects.filter(pk=session.pk, offset=offset).update(
            offset=offset + length, expires_at=timezone.now() + _lifetime()
        )
    session.offset = offset + length
    return session.offset


class _locked:
    """The partial file opened for writing under an exclusive, non-blocking lock (one chunk at a time)."""

    def __init__(self, path: Path, *, offset: int):
        self.path, self.offset = path, offset

    def __enter__(self):
        try:
            self.handle = open(self.path, "r+b")  # noqa: SIM115 (closed in __exit__)
        except FileNotFoundError:
            raise SessionError("This session's bytes are gone (it expired); start a new upload.", code="expired",
                               status=410) from None
        try:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise SessionError("Another chunk of this session is being written; retry when it has finished.",
                               code="busy", status=409, offset=self.offset) from None
        return self.handle

    def __exit__(self, *exc_info) -> None:
        fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
        self.handle.close()


def _check_writable(session: UploadSession) -> None:
    if session.status == UploadSession.Status.COMPLETE:
        raise SessionError("This upload is complete; it takes no more chunks.", code="complete", status=409,
                           offset=session.offset)
    if session.status == UploadSession.Status.FAILED:
        raise SessionError(f"This upload failed ({session.error}); start a new one.", code="failed", status=409)
    if session.expires_at <= timezone.now():
        raise SessionError("This upload session expired; start a new one.", code="expired", status=410)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)
    return digest.hexdigest()


class PartialFile(File):
    """The partial file handed to storage: FileSystemStorage moves it into place (temporary_file_path), any other
    storage reads it in chunks; `sha256` spares store_upload a second pass."""

    def __init__(self, path: Path, *, name: str, sha256: str):
        super().__init__(open(path, "rb"), name=name)  # noqa: SIM115 (closed by the caller)
        self.path, self.sha256 = path, sha256

    def temporary_file_path(self) -> str:
        return str(self.path)


def finalise(*, session: UploadSession) -> UploadSession:
    """Check the whole file against the declared sha256 and store it (once per account and digest). Idempotent: a
    complete session is returned as it is. A mismatch fails the session and deletes its bytes."""
    if session.status == UploadSession.Status.COMPLETE:
        return session
    _check_writable(session)
    if session.offset != session.size:
        raise SessionError(f"The upload has {session.offset} of its {session.size} bytes; send the rest first.",
                           code="incomplete", status=409, offset=session.offset)
    path = partial_path(session)
    with _locked(path, offset=session.offset):
        actual = file_sha256(path)
        if actual != session.sha256:
            _fail(session, "the file's SHA-256 does not match the declared one")
            path.unlink(missing_ok=True)
            raise SessionError("The uploaded file's SHA-256 does not match the declared sha256; its bytes were "
                               "deleted. Start a new upload.", code="sha256_mismatch", field="sha256")
        with transaction.atomic():
            locked = UploadSession.objects.select_for_update().get(pk=session.pk)
            if locked.status == UploadSession.Status.COMPLETE:
                return locked
            stored = _stored_copy(account_key=session.account_key, kind=session.kind, sha256=actual,
                                  size=session.size)
            stored_here = stored is None
            if stored is None:
                partial = PartialFile(path, name=session.original_name or "upload", sha256=actual)
                try:
                    stored = store_upload(upload=partial, account_key=session.account_key, owner=session.owner,
                                          kind=session.kind, folder=f"uploads/{session.kind}",
                                          suffix=_suffix(session.kind, session.original_name))
                finally:
                    partial.close()
            locked.status, locked.stored, locked.stored_here = UploadSession.Status.COMPLETE, stored, stored_here
            locked.expires_at = timezone.now() + _lifetime()  # time for a consumer to claim it
            locked.save(update_fields=["status", "stored", "stored_here", "expires_at"])
    path.unlink(missing_ok=True)  # moved away already when the storage is the local disk
    return locked


def _fail(session: UploadSession, reason: str) -> None:
    UploadSession.objects.filter(pk=session.pk).update(status=UploadSession.Status.FAILED, error=reason[:300])
    session.status, session.error = UploadSession.Status.FAILED, reason[:300]


def abort(*, session: UploadSession) -> None:
    """The owner gives up: an unfinished session goes at once with its bytes; a finished one expires now, so the
    sweep removes its stored file unless a consumer claimed it."""
    if session.status == UploadSession.Status.COMPLETE:
        UploadSession.objects.filter(pk=session.pk).update(expires_at=timezone.now())
        return
    partial_path(session).unlink(missing_ok=True)
    UploadSession.objects.filter(pk=session.pk).delete()


def claim(*, session_id, owner, kinds: set[str]) -> StoredUpload:
    """The stored file of the owner's complete session, marked taken so the sweep keeps it; SessionError (field
    `upload`) when there is no such session, it is not finished, or it carries another kind of file. Call inside the
    consumer's transaction: a consumer that fails leaves the session unclaimed."""
    session = UploadSession.objects.select_for_update().filter(pk=session_id, owner=owner).first() if owner else None
    if session is None:
        raise SessionError("No upload session of yours has this id.", code="unknown_upload", field="upload")
    if session.status != UploadSession.Status.COMPLETE or session.stored is None:
        raise SessionError(f"This upload is not finished ({session.offset} of {session.size} bytes); finalise it "
                           "first.", code="upload_not_finished", field="upload")
    if session.kind not in kinds:
        wanted = " or ".join(sorted(kind.replace("_", " ") for kind in kinds)) or "no uploaded file"
        raise SessionError(f"This upload is a {session.kind.replace('_', ' ')}; here it must be a {wanted}.",
                           code="wrong_kind", field="upload")
    if session.consumed_at is None:
        UploadSession.objects.filter(pk=session.pk).update(consumed_at=timezone.now())
    return session.stored


def sweep_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Remove sessions past their expiry: unfinished ones with their partial bytes; finished ones as rows, and the
    file a finished one stored too when nobody claimed it through any session (and no live session points at it)."""
    now = now or timezone.now()
    expired = list(UploadSession.objects.filter(expires_at__lte=now).select_related("stored"))
    counts = {"unfinished": 0, "finished": 0, "files": 0}
    for session in expired:
        if session.status != UploadSession.Status.COMPLETE:
            partial_path(session).unlink(missing_ok=True)
            counts["unfinished"] += 1
            continue
        counts["finished"] += 1
        if session.stored_here and session.stored is not None and session.consumed_at is None:
            others = UploadSession.objects.filter(stored=session.stored).exclude(pk=session.pk)
            if not others.filter(Q(consumed_at__isnull=False) | Q(expires_at__gt=now)).exists():
                discard(session.stored.storage_name)
                counts["files"] += 1
    UploadSession.objects.filter(pk__in=[session.pk for session in expired]).delete()
    return counts

