"""The organizers' background jobs (Celery): each takes primary keys as keyword-only arguments and acts once."""

from __future__ import annotations

from celery import shared_task

from . import bundle_imports, dataset_uploads


@shared_task(name="spinebench.organizers.tasks.import_bundle")
def import_bundle(*, import_pk: int) -> str:
    """Import an uploaded challenge bundle (organizers.bundle_imports.run_bundle_import)."""
    return bundle_imports.run_bundle_import(import_pk=import_pk).status


def start_bundle_import_task(import_pk: int) -> None:
    import_bundle.delay(import_pk=import_pk)


@shared_task(name="spinebench.organizers.tasks.check_dataset_upload")
def check_dataset_upload(*, upload_pk: int) -> str:
    """Unpack, import and check an uploaded dataset zip (organizers.dataset_uploads.run_dataset_check)."""
    return dataset_uploads.run_dataset_check(upload_pk=upload_pk).status


def start_dataset_check_task(upload_pk: int) -> None:
    check_dataset_upload.delay(upload_pk=upload_pk)


@shared_task(name="spinebench.organizers.tasks.sweep_dataset_checks")
def sweep_dataset_checks() -> int:
    """Fail dataset checks that outlived their time limit (organizers.dataset_uploads.sweep_stale_checks)."""
    return dataset_uploads.sweep_stale_checks()
