"""Local copies of stored files for what needs a path: SimpleITK reads, Docker bind mounts and `docker load`,
zip extraction, scoring.

With the filesystem storage the stored file is already local and is used where it lies. With an object store
(SPINEBENCH_STORAGE=s3) `local_copy` downloads the object once into SPINEBENCH_CACHE_DIR/stored/<sha256><suffix>,
checks its sha256 (the one recorded when the upload arrived, or the caller's), renames it into place atomically (a
concurrent reader never sees half a file), and afterwards hands out the present copy after checking its sha256
again: a copy altered on the worker's disk is detected, dropped and fetched again. The folder is kept under
SPINEBENCH_CACHE_MAX_BYTES by removing the least recently used copies.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.db.models.fields.files import FieldFile

from .models import StoredUpload
from .stored_files import iter_bytes, local_path

logger = logging.getLogger(__name__)
_PARTIAL = ".partial-"


class CacheError(Exception):
    """The stored object does not hold the bytes it should (its sha256 differs from the recorded one)."""


def cache_folder() -> Path:
    folder = Path(settings.SPINEBENCH_CACHE_DIR) / "stored"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def local_copy(stored: FieldFile | str, *, sha256: str | None = None, storage: Storage | None = None) -> Path:
    """A local path holding the bytes of `stored` (a model's file field or a name in `storage`, by default the
    field's storage or the default storage). `sha256`: the expected digest; without it the one recorded for the
    upload (StoredUpload) is used, and a file stored without one is downloaded afresh each time."""
    if isinstance(stored, FieldFile):
        name, storage = stored.name or "", storage or stored.storage
    else:
        name, storage = stored, storage or default_storage
    if not name:
        raise ValueError("local_copy: the field holds no file")
    path = local_path(name, storage=storage)
    if path is not None:
        return path
    sha256 = sha256 or StoredUpload.objects.filter(storage_name=name).values_list("sha256", flat=True).first()
    suffix = "".join(Path(name).suffixes[-2:])  # readers choose by suffix (.nii.gz, .zip, .csv)
    folder = cache_folder()
    if sha256:
        present = folder / f"{sha256}{suffix}"
        if present.is_file():
            if file_sha256(present) == sha256:
                os.utime(present)  # most recently used: pruned last
                return present
            logger.warning("cached copy %s of %s does not match its sha256: fetching it again", present, name)
            present.unlink(missing_ok=True)
    partial, digest = _download(name, storage=storage, folder=folder)
    if sha256 and digest != sha256:
        partial.unlink(missing_ok=True)
        raise CacheError(f"{name}: the stored object does not match the sha256 recorded for it")
    target = folder / f"{digest}{suffix}"
    os.replace(partial, target)
    prune(keep=target)
    return target


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(name: str, *, storage: Storage, folder: Path) -> tuple[Path, str]:
    handle, partial = tempfile.mkstemp(prefix=_PARTIAL, dir=folder)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            for block in iter_bytes(name, storage=storage):
                digest.update(block)
                out.write(block)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    return Path(partial), digest.hexdigest()


def prune(*, keep: Path | None = None) -> list[Path]:
    """Remove the least recently used copies until the folder fits SPINEBENCH_CACHE_MAX_BYTES (never `keep`, never
    a download in progress); the removed paths. A process still reading a removed copy keeps its open handle."""
    limit = settings.SPINEBENCH_CACHE_MAX_BYTES
    copies = []
    for entry in os.scandir(cache_folder()):
        if entry.is_file(follow_symlinks=False) and not entry.name.startswith(_PARTIAL):
            status = entry.stat(follow_symlinks=False)
            copies.append((status.st_mtime, status.st_size, Path(entry.path)))
    total = sum(size for _, size, _ in copies)
    removed = []
    for _, size, path in sorted(copies):
        if total <= limit:
            break
        if keep is not None and path == keep:
            continue
        path.unlink(missing_ok=True)
        total -= size
        removed.append(path)
    return removed
