"""Challenge bundles uploaded through the site or the API (ARCHITECTURE "Untrusted bundles").

On upload (`start_bundle_import`, inside the request): the zip is checked with the uploads app's bounded reader
(entry count, sizes, no links, no names that escape), `challenge.yaml` is validated with the **untrusted** schema
profile (no server paths, no `organizers:` list, capped case counts; the same key-exact messages as the CLI), and
the database rule is applied: the slug must be new or belong to a challenge the uploader already organizes. Only then
is the zip stored (charged to the uploader's storage quota) and the job queued.

In the background (`run_bundle_import`, the organizers' Celery task): the same checks again under the slug's
lock, then `datasets.bundles.import_bundle` (its one entry point) generates the dataset folders and writes the rows
in one transaction, which also makes the uploader an organizer and records the action. A failure rolls the rows
back and deletes the dataset folders this import created, so a failed import changes nothing.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from spinebench.challenges.bundle_schema import BundleError, untrusted_profile
from spinebench.challenges.bundles import load_bundle
from spinebench.challenges.models import Challenge
from spinebench.challenges.signals import report_organizer_action
from spinebench.datasets import services as dataset_services
from spinebench.datasets.bundles import ImportOptions, import_bundle
from spinebench.uploads.local_cache import local_copy
from spinebench.uploads.models import StoredUpload
from spinebench.uploads.services import store_upload, user_account_key
from spinebench.uploads.zips import ZipLimits, ZipRefused, check_zip, extract_zip

from .models import BundleImport

logger = logging.getLogger(__name__)

#: start(import_pk) queues the background import; the organizers app registers its Celery task when ready.
_import_starter: Callable[[int], object] | None = None


def register_import_starter(start: Callable[[int], object]) -> None:
    global _import_starter
    _import_starter = start


def _limits() -> ZipLimits:
    return ZipLimits(
        max_entries=settings.SPINEBENCH_ZIP_MAX_ENTRIES, max_total_bytes=settings.SPINEBENCH_MAX_UPLOAD_BYTES
    )


def _unpack(handle, destination: Path, *, name: str) -> Path:
    """The folder holding challenge.yaml: the zip's top level, or its one top-level folder."""
    extract_zip(handle, destination, name=name, limits=_limits())
    if (destination / "challenge.yaml").is_file():
        return destination
    entries = [entry for entry in destination.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and (entries[0] / "challenge.yaml").is_file():
        return entries[0]
    raise BundleError(f"{name}: no challenge.yaml at the top of the zip (or in its one top-level folder)")


def _check_slug(slug: str, uploader) -> None:
    """The database rule of an uploaded bundle: a new slug, or one of the uploader's own challenges."""
    existing = Challenge.objects.filter(slug=slug).first()
    if existing is not None and not existing.is_organizer(uploader):
        raise BundleError(
            f"challenge.yaml: challenge.slug: {slug!r} belongs to another challenge; choose a new slug"
        )


def validate_upload(*, upload, uploader) -> dict:
    """The bundle's validated content (or BundleError / ZipRefused with a message safe to show)."""
    name = Path(getattr(upload, "name", "") or "bundle.zip").name
    upload.seek(0)
    check_zip(upload, name=name, limits=_limits())
    with tempfile.TemporaryDirectory(prefix="bundle-check-") as scratch:
        upload.seek(0)
        folder = _unpack(upload, Path(scratch), name=name)
        bundle = load_bundle(folder, profile=untrusted_profile())
    _check_slug(bundle["challenge"]["slug"], uploader)
    upload.seek(0)
    return bundle


def start_bundle_import(*, upload, uploader) -> BundleImport:
    """Validate, store and queue an uploaded bundle; raises BundleError, ZipRefused or UploadRefused (quota) with
    nothing stored."""
    bundle = validate_upload(upload=upload, uploader=uploader)
    with transaction.atomic():
        stored = store_upload(
            upload=upload, account_key=user_account_key(uploader), owner=uploader,
            kind=StoredUpload.Kind.DATASET,  # a bundle is the recipe of a challenge's datasets
            folder="bundles", suffix=".zip",
        )
        job = BundleImport.objects.create(
            uploader=uploader, archive=stored.storage_name, original_name=stored.original_name,
            slug=bundle["challenge"]["slug"], stage="waiting for a worker",
        )
        if _import_starter is None:
            raise RuntimeError("no bundle import task registered (spinebench.organizers is not ready)")
        pk, start = job.pk, _import_starter
        transaction.on_commit(lambda: start(pk))
    return job


def _set(job: BundleImport, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    BundleImport.objects.filter(pk=job.pk).update(**fields)


def _new_dataset_folders(bundle: dict, slug: str) -> list[Path]:
    """The dataset folders the import would create (those not there yet): removed again when it fails."""
    names = bundle.get("datasets") or {}
    folders = [dataset_services.default_folder(challenge_slug=slug, slug=name) for name in names]
    return [folder for folder in folders if not folder.exists()]


def run_bundle_import(*, import_pk: int) -> BundleImport:
    """Import a queued bundle once (a job already started or finished is left alone)."""
    with transaction.atomic():
        job = BundleImport.objects.select_for_update().get(pk=import_pk)
        if job.status != BundleImport.Status.QUEUED:
            return job
        _set(job, status=BundleImport.Status.RUNNING, stage="unpacking and checking the bundle", progress=5)
    created_folders: list[Path] = []
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bundle-import-") as scratch,
            local_copy(job.archive).open("rb") as handle,
        ):
            folder = _unpack(handle, Path(scratch), name=job.original_name or "bundle.zip")
            bundle = load_bundle(folder, profile=untrusted_profile())
            slug = bundle["challenge"]["slug"]
            created_folders = _new_dataset_folders(bundle, slug)
            _set(job, stage="generating the datasets", progress=20)
            with transaction.atomic():
                Challenge.objects.select_for_update().filter(slug=slug).first()  # two imports of one slug queue here
                _check_slug(slug, job.uploader)
                is_new = not Challenge.objects.filter(slug=slug).exists()
                challenge = import_bundle(folder, ImportOptions(progress=False), profile=untrusted_profile())
                challenge.organizers.add(job.uploader)
                report_organizer_action(
                    challenge=challenge, actor=job.uploader,
                    action="challenge.import" if is_new else "challenge.reimport",
                    target=f"challenge {slug}", note=f"bundle {job.original_name}",
                )
                _set(job, status=BundleImport.Status.SUCCEEDED, stage="done", progress=100, challenge=challenge,
                     finished=timezone.now())
    except (BundleError, ZipRefused) as error:
        _fail(job, str(error), created_folders)
    except Exception as error:  # the job must end; the uploader sees the kind, the log the details
        logger.exception("bundle import %s failed", job.pk)
        _fail(job, f"the import stopped with an internal error ({type(error).__name__})", created_folders)
    return job


def _fail(job: BundleImport, message: str, created_folders: list[Path]) -> None:
    for folder in created_folders:
        shutil.rmtree(folder, ignore_errors=True)
    _set(job, status=BundleImport.Status.FAILED, stage="failed", error=message[:4000], finished=timezone.now())
