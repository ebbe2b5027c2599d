"""Stored files through Django's storage API (settings STORAGES), whichever backend holds them: the local
filesystem (the embedded default) or an S3-compatible object store (django-storages). Code that stores or serves a
file asks here instead of joining MEDIA_ROOT, so the same code runs on one host and on many.

Reading never downloads an object whole to serve part of it: `iter_bytes` answers a byte range from the disk or
with one ranged GET. Code that needs a local path (SimpleITK, Docker, zip extraction) asks
spinebench.uploads.local_cache instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import Storage, default_storage

CHUNK = 256 * 1024


def local_path(name: str, *, storage: Storage | None = None) -> Path | None:
    """The file's path when the storage keeps it on this machine's disk; None for an object store."""
    try:
        return Path((storage or default_storage).path(name))
    except NotImplementedError:
        return None


def save_file(name: str, source: Path, *, storage: Storage | None = None) -> str:
    """Store the local file `source` under `name` (or the free name the storage picks); the stored name."""
    with source.open("rb") as handle:
        return (storage or default_storage).save(name, File(handle, name=Path(name).name))


def stored_once(name: str, build: Callable[[Path], object], *, storage: Storage | None = None) -> str:
    """The stored name of a derived file (a plot, a dataset archive) named by what it is built from: `name` when
    already stored, else `build(path)` writes it to a local temporary file that is then stored. A reader never
    sees half a file: on local disk it is renamed into place, an object store makes an object visible whole."""
    storage = storage or default_storage
    if storage.exists(name):
        return name
    suffix = Path(name).suffix
    target = local_path(name, storage=storage)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(suffix=suffix, dir=target.parent)
        os.close(handle)
        try:
            build(Path(temporary))
            os.replace(temporary, target)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        return name
    scratch = Path(settings.SPINEBENCH_CACHE_DIR) / "building"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch) as folder:
        built = Path(folder) / f"file{suffix}"
        build(built)
        return save_file(name, built, storage=storage)


def iter_bytes(
    name: str, *, first: int = 0, last: int | None = None, storage: Storage | None = None
) -> Iterator[bytes]:
    """Bytes `first`..`last` (inclusive; None: to the end) of a stored file, in chunks."""
    storage = storage or default_storage
    if last is not None and last < first:
        return
    path = local_path(name, storage=storage)
    if path is not None:
        with path.open("rb") as handle:
            yield from _read_span(handle, first, last)
        return
    with storage.open(name, "rb") as handle:
        stored_object = getattr(handle, "obj", None)  # django-storages' S3File: its boto3 Object, not yet read
        if stored_object is None:
            yield from _read_span(handle, first, last)
            return
        wanted = {} if first == 0 and last is None else {"Range": f"bytes={first}-{'' if last is None else last}"}
        yield from stored_object.get(**wanted)["Body"].iter_chunks(CHUNK)


def _read_span(handle, first: int, last: int | None) -> Iterator[bytes]:
    handle.seek(first)
    left = None if last is None else last - first + 1
    while left is None or left > 0:
        block = handle.read(CHUNK if left is None else min(CHUNK, left))
        if not block:
            return
        if left is not None:
            left -= len(block)
        yield block


def stored_sha256(name: str, *, storage: Storage | None = None) -> str:
    """Hex sha256 of a stored file, streamed."""
    digest = hashlib.sha256()
    for block in iter_bytes(name, storage=storage):
        digest.update(block)
    return digest.hexdigest()
