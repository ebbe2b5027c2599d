"""Signed, expiring download URLs for remote container workers: a job description names the algorithm archive and
each input file by such a URL instead of a path. The signature binds the file to the worker token the claim was
answered for and expires after SPINEBENCH_WORKER_URL_TTL_S; the download view also requires that same worker token
(a URL leaked from a worker's log is useless without it, and no participant's token is accepted there at all).

Only the site makes these URLs, from what a claim lists: a stored file by its storage name with its sha256, or a
file of a case's input folder by its absolute path (the signature is what makes it servable; a signed path that is
no longer a plain file is refused)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .jobs import Refs

SALT = "spinebench.algorithms.worker-files"
STORED, DATASET = "s", "d"


class FileRefused(Exception):
    """The signed value is invalid, expired, for another token or names a file outside what may be served."""


@dataclass(frozen=True)
class SignedFile:
    kind: str  # STORED or DATASET
    name: str  # storage name, or the absolute path of a dataset file


def ttl_seconds() -> int:
    return int(settings.SPINEBENCH_WORKER_URL_TTL_S)


def sign(*, token_pk: int, kind: str, name: str) -> str:
    return signing.TimestampSigner(salt=SALT).sign_object({"t": token_pk, "k": kind, "n": name}, compress=True)


def unsign(value: str, *, token_pk: int) -> SignedFile:
    try:
        data = signing.TimestampSigner(salt=SALT).unsign_object(value, max_age=ttl_seconds())
    except signing.SignatureExpired:
        raise FileRefused("this download URL has expired; claim the job again for fresh ones") from None
    except (signing.BadSignature, ValueError, TypeError):
        raise FileRefused("this download URL is not valid") from None
    if not isinstance(data, dict) or data.get("t") != token_pk or data.get("k") not in (STORED, DATASET):
        raise FileRefused("this download URL was issued to another worker token")
    return SignedFile(kind=data["k"], name=str(data.get("n") or ""))


def dataset_path(name: str) -> Path:
    """The dataset file a signed name points at, refused unless it is still a plain file (not a link)."""
    path = Path(name)
    if not path.is_absolute() or path.is_symlink() or not path.is_file():
        raise FileRefused("this file is not available")
    return path


def signed_refs(*, token_pk: int, base_url: str) -> Refs:
    """Refs (jobs.Refs) naming files by signed URLs under `base_url` (the site's address as the worker reached it)."""

    def url(kind: str, name: str) -> str:
        return base_url.rstrip("/") + reverse("worker-file", kwargs={"signed": sign(token_pk=token_pk, kind=kind,
                                                                                       name=name)})

    def stored(name: str, sha256: str) -> dict:
        from django.core.files.storage import default_storage

        return {"url": url(STORED, name), "sha256": sha256, "size": default_storage.size(name)}

    def folder(path: Path) -> dict:
        folder_path = Path(path).resolve()
        files = []
        for entry in sorted(folder_path.rglob("*")):
            if entry.is_file() and not entry.is_symlink():
                files.append({"path": entry.relative_to(folder_path).as_posix(), "url": url(DATASET, str(entry)),
                              "size": entry.stat().st_size})
        return {"files": files}

    def single(path: Path) -> dict:
        resolved = Path(path).resolve()
        return {"url": url(DATASET, str(resolved)), "size": resolved.stat().st_size}

    return Refs(file=stored, folder=folder, path=single)
