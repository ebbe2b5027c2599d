"""Datasets from the site: an organizer uploads a dataset zip (console or API, a finished chunked upload session or
one multipart file), a background job checks it, the organizer reads the report and attaches it to a phase.

On upload (`start_dataset_upload`, inside the request): the fields are checked (a slug new in the challenge, a known
layout, and for a public layout the task and split it is imported as), the zip's central directory is checked with
the uploads app's bounded reader (entry count, links, names that escape), the file is stored (or the session claimed)
and the job queued.

In the background (`run_dataset_check`, the organizers' Celery task): the zip is unpacked with `extract_zip` (every
byte counted against SPINEBENCH_MAX_DATASET_UNPACKED_BYTES, no links, nothing outside the scratch folder), converted
by `phantoms.importers.import_dataset` when it is a public layout, and checked (`spinebench.datasets.checks`). A
sound dataset is renamed into its folder under DATASETS_ROOT and the upload is ready with its report; a refused one
is failed with a message naming the file and what was expected, its scratch folder removed and its stored zip
released: no folder and no dataset row remain.

Attaching (`attach_upload`, `set_phase_datasets`): the first attach makes the Dataset row
(`datasets.services.register_dataset`); every link goes through `datasets.services.link_phase_datasets`, the one
writer. The dataset a phase is scored against is never swapped under scored submissions: changing or removing it
while the phase has succeeded submissions is refused (their scores would no longer say what they were scored
against); add a new phase instead. Training datasets may change at any time. Every action is audited.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from spinebench.challenges import registry
from spinebench.challenges.models import Challenge, Phase
from spinebench.challenges.signals import report_organizer_action
from spinebench.datasets import services as dataset_services
from spinebench.datasets.checks import DatasetCheckError, check_dataset_folder
from spinebench.datasets.models import Dataset
from spinebench.submissions.models import Submission
from spinebench.submissions.status import Status as SubmissionStatus
from spinebench.uploads.chunked import SessionError
from spinebench.uploads.chunked import claim as claim_session
from spinebench.uploads.models import StoredUpload, UploadSession
from spinebench.uploads.services import challenge_account_key, discard, store_upload
from spinebench.uploads.zips import ZipLimits, ZipRefused, check_zip, extract_zip

from .models import BundleImport, DatasetUpload

logger = logging.getLogger(__name__)

ROLES = {"test": "dataset", "training": "training_dataset"}
ROLE_LABELS = {"test": "scored (test) dataset", "training": "training dataset"}

#: start(upload_pk) queues the background check; the organizers app registers its Celery task when ready.
_check_starter: Callable[[int], object] | None = None


def register_check_starter(start: Callable[[int], object]) -> None:
    global _check_starter
    _check_starter = start


def layouts() -> list[str]:
    from phantoms.importers import IMPORTERS

    return [DatasetUpload.SPINEBENCH_LAYOUT, *sorted(IMPORTERS)]


def _limits() -> ZipLimits:
    return ZipLimits(max_entries=settings.SPINEBENCH_DATASET_ZIP_MAX_ENTRIES,
                     max_total_bytes=settings.SPINEBENCH_MAX_DATASET_UNPACKED_BYTES)


def _target_folder(challenge: Challenge, slug: str) -> Path:
    return dataset_services.default_folder(challenge_slug=challenge.slug, slug=slug)


def _check_fields(*, challenge: Challenge, slug: str, layout: str, task: str, split: str) -> None:
    """Field-keyed ValidationError for what the uploader asked for, before a byte is stored."""
    errors: dict[str, str] = {}
    if challenge.datasets.filter(slug=slug).exists() or _target_folder(challenge, slug).exists():
        errors["slug"] = f"This challenge already has a dataset {slug!r}; choose another name."
    elif DatasetUpload.objects.filter(challenge=challenge, slug=slug).exclude(
            status=DatasetUpload.Status.FAILED).exists():
        errors["slug"] = f"An upload named {slug!r} is already being checked or waiting to be attached."
    if layout not in layouts():
        errors["layout"] = f"Unknown layout {layout!r}; expected one of {', '.join(layouts())}."
    elif layout != DatasetUpload.SPINEBENCH_LAYOUT:
        if not task:
            errors["task"] = f"A {layout} zip is imported as one task: name it."
        if split not in ("train", "test"):
            errors["split"] = "Name the split the zip is imported as: train or test."
    if task:
        try:
            registry.validate_task_id(task)
        except ValidationError as error:
            errors["task"] = " ".join(error.messages)
    if split and split not in ("train", "test"):
        errors["split"] = "The split is train or test."
    if errors:
        raise ValidationError(errors)


def _stored_archive(*, challenge: Challenge, actor, upload, session_id) -> StoredUpload:
    """The zip in storage: the claimed chunked session, or the multipart file stored now (charged to the
    challenge). ValidationError keyed `upload` / `archive` when neither or both are given or it is not a sound zip."""
    if (upload is None) == (not session_id):
        raise ValidationError({"archive": "Send the zip as a file (archive) or as a finished upload session "
                                          "(upload), one of the two."})
    if upload is not None:
        name = Path(getattr(upload, "name", "") or "dataset.zip").name
        upload.seek(0)
        try:
            check_zip(upload, name=name, limits=_limits(), verify_data=False)
        except ZipRefused as error:
            raise ValidationError({"archive": str(error)}) from None
        return store_upload(upload=upload, account_key=challenge_account_key(challenge.pk), owner=actor,
                            kind=StoredUpload.Kind.DATASET, folder="datasets", suffix=".zip")
    try:
        stored = claim_session(session_id=session_id, owner=actor, kinds={StoredUpload.Kind.DATASET})
    except (SessionError, ValidationError, ValueError) as error:
        message = str(error) if isinstance(error, SessionError) else "No upload session of yours has this id."
        raise ValidationError({"upload": message}) from None
    with default_storage.open(stored.storage_name) as handle:
        try:
            check_zip(handle, name=stored.original_name or "dataset.zip", limits=_limits(), verify_data=False)
        except ZipRefused as error:
            raise ValidationError({"upload": str(error)}) from None
    return stored


def start_dataset_upload(*, challenge: Challenge, actor, slug: str, title: str = "",
                         layout: str = DatasetUpload.SPINEBENCH_LAYOUT, task: str = "", split: str = "",
                         upload=None, session_id=None) -> DatasetUpload:
    """Check the request, store the zip and queue its check; a ValidationError keyed by field changes nothing."""
    _check_fields(challenge=challenge, slug=slug, layout=layout, task=task, split=split)
    with transaction.atomic():
        stored = _stored_archive(challenge=challenge, actor=actor, upload=upload, session_id=session_id)
        job = DatasetUpload.objects.create(
            challenge=challenge, uploader=actor, archive=stored.storage_name, original_name=stored.original_name,
            slug=slug, title=title or slug, layout=layout, task=task, split=split, stage="waiting for a worker",
        )
        report_organizer_action(challenge=challenge, actor=actor, action="dataset.upload",
                                target=f"dataset upload {job.pk}",
                                note=f"{stored.original_name} as {slug} ({layout}, {stored.size} bytes)")
        if _check_starter is None:
            raise RuntimeError("no dataset check task registered (spinebench.organizers is not ready)")
        pk, start = job.pk, _check_starter
        transaction.on_commit(lambda: start(pk))
    return job


def _set(job: DatasetUpload, **fields) -> None:
    for name, value in fields.items():
        setattr(job, name, value)
    DatasetUpload.objects.filter(pk=job.pk).update(**fields)


def _top(folder: Path) -> Path:
    """The zip's top level, or its one top-level folder (a zip of a folder); macOS metadata is ignored."""
    entries = [entry for entry in folder.iterdir() if not entry.name.startswith((".", "__MACOSX"))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else folder


def _dataset_root(unpacked: Path) -> Path:
    if (unpacked / "dataset.json").is_file():
        return unpacked
    top = _top(unpacked)
    if (top / "dataset.json").is_file():
        return top
    raise DatasetCheckError("dataset.json: not found at the top of the zip (or in its one top-level folder); a "
                            "SpineBench dataset zip holds dataset.json, inputs/<case_id>/ and ground_truth/ "
                            "(docs/formats.md), or choose the public layout it follows")


def _build(job: DatasetUpload, unpacked: Path, staged: Path) -> dict:
    """The checked dataset folder at `staged` and its report (DatasetCheckError / ImportDatasetError otherwise)."""
    from phantoms.importers import import_dataset

    if job.layout == DatasetUpload.SPINEBENCH_LAYOUT:
        root = _dataset_root(unpacked)
        report = check_dataset_folder(root, task=job.task, split=job.split)
        root.rename(staged)
        return report
    import_dataset(job.layout, _top(unpacked), staged, task=job.task, split=job.split)
    return check_dataset_folder(staged, task=job.task, split=job.split)


def run_dataset_check(*, upload_pk: int) -> DatasetUpload:
    """Check a queued upload once (a job already started or finished is left alone)."""
    from phantoms.importers import ImportDatasetError

    with transaction.atomic():
        job = DatasetUpload.objects.select_for_update().select_related("challenge").get(pk=upload_pk)
        if job.status != DatasetUpload.Status.QUEUED:
            return job
        _set(job, status=DatasetUpload.Status.RUNNING, stage="unpacking the zip", progress=5,
             started=timezone.now())
    target = _target_folder(job.challenge, job.slug)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The scratch folder sits beside the target, so the checked dataset is renamed into place on one disk.
        with (
            tempfile.TemporaryDirectory(prefix=f".{job.slug}.checking-", dir=target.parent) as scratch,
            default_storage.open(job.archive) as handle,
        ):
            unpacked, staged = Path(scratch) / "zip", Path(scratch) / "dataset"
            unpacked.mkdir()
            extract_zip(handle, unpacked, name=job.original_name or "dataset.zip", limits=_limits())
            _set(job, stage="checking the dataset", progress=40)
            report = _build(job, unpacked, staged)
            if target.exists():
                raise DatasetCheckError(f"{job.slug}: a dataset folder of this name appeared meanwhile; upload again "
                                        "under another name")
            staged.rename(target)
        _set(job, status=DatasetUpload.Status.READY, stage="checked: read the report, then attach it", progress=100,
             report=report, folder=dataset_services.relative_to_root(target), finished=timezone.now())
    except (ZipRefused, DatasetCheckError, ImportDatasetError) as error:
        _fail(job, _without_scratch(str(error), target.parent))
    except Exception as error:  # the job must end; the organizer sees the kind, the log the details
        logger.exception("dataset upload %s failed", job.pk)
        _fail(job, f"the check stopped with an internal error ({type(error).__name__})")
    return job


def sweep_stale_checks(*, now: datetime | None = None) -> int:
    """Checks still running past SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S lost their worker (a crash leaves no
    redelivery): each is failed with the reason, and what it may have left (its scratch folders, a dataset folder
    renamed into place but never recorded, its stored zip) is removed. How many were failed."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S)
    failed = 0
    for pk in DatasetUpload.objects.filter(status=DatasetUpload.Status.RUNNING, started__lte=cutoff).values_list(
            "pk", flat=True):
        with transaction.atomic():
            job = DatasetUpload.objects.select_for_update().select_related("challenge").get(pk=pk)
            if job.status != DatasetUpload.Status.RUNNING:
                continue
            target = _target_folder(job.challenge, job.slug)
            for scratch in target.parent.glob(f".{job.slug}.checking-*"):
                shutil.rmtree(scratch, ignore_errors=True)
            if target.exists() and not job.challenge.datasets.filter(slug=job.slug).exists():
                shutil.rmtree(target, ignore_errors=True)
            limit = settings.SPINEBENCH_DATASET_CHECK_TIME_LIMIT_S
            _fail(job, f"the check outlived its time limit ({limit} s; its worker stopped); upload the zip again")
            failed += 1
    return failed


def _without_scratch(message: str, parent: Path) -> str:
    """An importer names files by their path in the scratch folder: show them from the zip's top instead."""
    scratch = rf"{re.escape(str(parent))}/\.[^/\s]*\.checking-[^/\s]*/"
    return re.sub(rf"{scratch}(zip|dataset|\.dataset\.importing-[^/\s]*)(/|\b)", "", message)


def _release(storage_name: str) -> None:
    """Delete the stored zip unless another record (a dataset upload, a bundle import: identical bytes of one
    account are stored once) or an unclaimed chunked session still points at it."""
    if DatasetUpload.objects.filter(archive=storage_name).count() > 1:
        return
    if BundleImport.objects.filter(archive=storage_name).exists():
        return
    if UploadSession.objects.filter(stored__storage_name=storage_name, consumed_at__isnull=True).exists():
        return
    discard(storage_name)


def _fail(job: DatasetUpload, message: str) -> None:
    _set(job, status=DatasetUpload.Status.FAILED, stage="failed", error=message[:4000], finished=timezone.now())
    _release(job.archive)


def discard_upload(*, job: DatasetUpload, actor) -> None:
    """Remove an upload that was never attached (its folder and stored zip); a registered one is a dataset now."""
    if job.dataset_id is not None:
        raise ValidationError({"upload": "This upload is a dataset of the challenge now; detach it from its phases "
                                         "instead."})
    if job.status in (DatasetUpload.Status.QUEUED, DatasetUpload.Status.RUNNING):
        raise ValidationError({"upload": "The check is still running; discard it when it has finished."})
    with transaction.atomic():
        if job.folder:
            shutil.rmtree(dataset_services.datasets_root() / job.folder, ignore_errors=True)
        _release(job.archive)
        report_organizer_action(challenge=job.challenge, actor=actor, action="dataset.discard",
                                target=f"dataset upload {job.pk}", note=job.slug)
        job.delete()


def _scored_submissions(phase: Phase) -> int:
    return Submission.objects.filter(phase=phase, status=SubmissionStatus.SUCCEEDED).count()


def _role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError({"role": f"role must be one of {', '.join(ROLES)}."})
    return ROLES[role]


def set_phase_datasets(*, phase: Phase, actor, changes: dict[str, Dataset | None]) -> None:
    """Set the phase's scored (`dataset`) and/or `training_dataset` (None detaches) through the one writer, after
    the rule of the module docstring; audited. ValidationError keyed by field otherwise."""
    link = getattr(phase, "dataset_link", None) if phase.pk else None
    for field, dataset in changes.items():
        if dataset is not None and dataset.challenge_id != phase.challenge_id:
            raise ValidationError({field: "That dataset belongs to another challenge."})
    current = {field: getattr(link, field, None) if link else None for field in ROLES.values()}
    changed = {field: dataset for field, dataset in changes.items() if dataset != current[field]}
    if not changed:
        return
    previous = current["dataset"]
    scored = _scored_submissions(phase) if "dataset" in changed and previous is not None else 0
    if scored and previous is not None:
        raise ValidationError({"dataset": (
            f"Phase {phase.title} has {scored} scored submission(s) against {previous.slug}; its scored dataset "
            "cannot change under them. Add a new phase for the new dataset.")})
    with transaction.atomic():
        dataset_services.link_phase_datasets(phase=phase, **changed)
        report_organizer_action(
            challenge=phase.challenge, actor=actor,
            action="dataset.attach" if all(changed.values()) else "dataset.detach", target=f"phase {phase.pk}",
            changes={field: [getattr(current[field], "slug", None), getattr(value, "slug", None)]
                     for field, value in changed.items()},
        )


def register_upload(*, job: DatasetUpload) -> Dataset:
    """The Dataset of a ready upload, made on first use from its checked folder."""
    if job.dataset is not None:
        return job.dataset
    if job.status != DatasetUpload.Status.READY:
        raise ValidationError({"upload": f"This upload is {job.get_status_display()}; only a checked upload can be "
                                         "attached."})
    try:
        dataset = dataset_services.register_dataset(
            challenge=job.challenge, slug=job.slug, folder=dataset_services.datasets_root() / job.folder,
            title=job.title,
        )
    except dataset_services.DatasetError as error:
        raise ValidationError({"upload": str(error)}) from None
    DatasetUpload.objects.filter(pk=job.pk).update(dataset=dataset)
    job.dataset = dataset
    return dataset


def attach_upload(*, job: DatasetUpload, actor, phase: Phase, role: str) -> Dataset:
    """Attach a checked upload to `phase` as its `test` (scored) or `training` dataset; one transaction."""
    field = _role(role)
    if phase.challenge_id != job.challenge_id:
        raise ValidationError({"phase": "That phase belongs to another challenge."})
    with transaction.atomic():
        dataset = register_upload(job=job)
        set_phase_datasets(phase=phase, actor=actor, changes={field: dataset})
    return dataset
