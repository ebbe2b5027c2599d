"""Organizers' evaluation images: accepting an upload (the same `docker save` validation as algorithm archives) and
running an image to score one submission of a custom phase under the algorithm sandbox (docs/evaluation.md).

Upload: the archive goes through the one upload path (size cap, the challenge's storage quota), is validated by
`archives.inspect_archive` (members, size, one linux/amd64 image, a non-root USER) and recorded by its image id; a
refused archive is deleted at once and nothing changes. The phase's metrics must be declared first: the upload makes
the phase `custom` and its leaderboard follows the declaration.

Scoring (`evaluate_with_image`, registered as the submissions app's image evaluator; it runs on a container
worker): the image is loaded into the engine without any tag (archives.untagged_stream) and run by its id with the
sandbox of an algorithm container (no network, read-only root, every capability dropped, bounded memory, pids, CPU,
wall clock, a size-capped /output) and its resolved non-root uid. /input holds the staged predictions and
predictions.json, the ground truth is a read-only bind mount, so the image can read it and never change it.
Whatever goes wrong is recorded in an EvaluationImageRun for the organizers; the submitter sees only "the
evaluation failed" on a phase whose test data are hidden.
"""

from __future__ import annotations

import contextvars
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path

import docker
import requests
from django.core.exceptions import ValidationError
from django.db import transaction

from evaluators.contract import (
    GROUND_TRUTH_MOUNT,
    MANIFEST_MOUNT,
    ContractError,
    manifest_part,
    parse_metrics,
    stage_ground_truth_part,
    stage_predictions,
    validated_metrics,
)
from evaluators.layout import MANIFEST
from spinebench.challenges.models import Phase
from spinebench.challenges.signals import report_organizer_action
from spinebench.evaluation.declarations import follow_declaration
from spinebench.evaluation.images import CustomEvaluation, EvaluationImage, EvaluationImageRun, phase_declaration
from spinebench.submissions.models import Submission
from spinebench.submissions.scoring import ImageEvaluationFailed
from spinebench.uploads.handlers import site_limit
from spinebench.uploads.limits import UploadRefused
from spinebench.uploads.local_cache import CacheError, local_copy
from spinebench.uploads.models import StoredUpload
from spinebench.uploads.services import challenge_account_key, check_upload_size, discard, store_upload

from . import runner
from .archives import ArchiveError, inspect_archive, untagged_stream
from .job_worker import EvaluationRunFailed, run_evaluation_image
from .users import shown

logger = logging.getLogger(__name__)

HIDDEN_FAILURE = "The evaluation failed; the organizers have been told."
METRICS_LIMIT_MB = 16


# upload -----------------------------------------------------------------------------------------------------------


def upload_evaluation_image(*, phase: Phase, actor, upload) -> EvaluationImage:
    """Validate and record an uploaded evaluation image for `phase`, make it the phase's image and the phase custom.
    ValidationError keyed by `archive` when it is refused (nothing is kept then)."""
    declaration = phase_declaration(phase)
    if declaration is None:
        raise ValidationError({"archive": "Declare the metrics this image reports first (the phase's metric "
                                          "declaration): the leaderboard is ranked by them."})
    custom, _ = CustomEvaluation.objects.get_or_create(phase=phase)
    try:
        check_upload_size(upload, limit=site_limit())
        stored = store_upload(upload=upload, account_key=challenge_account_key(phase.challenge_id), owner=actor,
                              kind=StoredUpload.Kind.EVALUATION_IMAGE, folder=f"evaluation-images/{phase.pk}",
                              suffix=".tar")
    except UploadRefused as refusal:
        raise ValidationError({"archive": str(refusal)}) from None
    try:
        described = inspect_archive(local_copy(stored.storage_name, sha256=stored.sha256),
                                    max_image_bytes=custom.image_size_limit_mb << 20)
    except (ArchiveError, CacheError) as error:
        discard(stored.storage_name)
        raise ValidationError({"archive": f"Archive refused: {error}"}) from None
    try:
        with transaction.atomic():
            locked = Phase.objects.select_for_update().get(pk=phase.pk)
            image = EvaluationImage.objects.filter(phase=locked, image_id=described.image_id).first()
            if image is None:
                image = EvaluationImage.objects.create(
                    phase=locked, image_id=described.image_id, archive=stored.storage_name,
                    archive_sha256=described.archive_sha256, size_bytes=described.size_bytes,
                    user=described.user[:128], uid=described.uid, gid=described.gid, repo_tags=described.repo_tags,
                    validation=[list(check) for check in described.checks], creator=actor,
                )
            else:
                transaction.on_commit(lambda: discard(stored.storage_name))  # the same image is stored already
            CustomEvaluation.objects.filter(pk=custom.pk).update(image=image)
            follow_declaration(locked, declaration)
            report_organizer_action(
                challenge=locked.challenge, actor=actor, action="phase.evaluation_image", target=f"phase {locked.pk}",
                changes={"evaluation_image": [custom.image.image_id if custom.image else None, image.image_id]},
                note=f"{described.size_bytes} bytes, user {shown(described.user)}",
            )
    except BaseException:
        if not EvaluationImage.objects.filter(archive=stored.storage_name).exists():
            discard(stored.storage_name)
        raise
    return image


# scoring ----------------------------------------------------------------------------------------------------------


def evaluate_with_image(submission: Submission, predictions_path: Path, case_ids: list[str] | None = None) -> dict:
    """Run the phase's evaluation image on `predictions_path`; the validated metrics, or ImageEvaluationFailed.
    `case_ids`: one part of a split test set; the image then sees only those cases' predictions, ground truth and
    manifest entries, and its metrics are checked against those cases."""
    phase = submission.phase
    custom = CustomEvaluation.objects.select_related("image").filter(phase=phase).first()
    declaration = phase_declaration(phase)
    if custom is None or custom.image is None or declaration is None:
        raise ImageEvaluationFailed("This phase has no evaluation image yet; the organizers have been told.")
    image, dataset = custom.image, phase.dataset
    if dataset is None:
        raise ImageEvaluationFailed("This phase has no test dataset to score against.")
    hidden = dataset.is_hidden
    started = time.monotonic()
    run = EvaluationImageRun(submission=submission, image=image)
    work = Path(tempfile.mkdtemp(prefix="sb-evaluation-"))
    try:
        remote = _remote_results.get()
        if remote is not None:  # a remote worker host ran the image (evaluation_jobs.record_results)
            metrics, log_tail = remote.result(case_ids)
        else:
            metrics, log_tail = _run(image=image, custom=custom, phase=phase, submission=submission,
                                     predictions_path=predictions_path, work=work, case_ids=case_ids)
        run.log_tail = "\n".join(log_tail)
        run.succeeded = True
        return validated_metrics(metrics, declaration=declaration,
                                 case_ids=dataset.case_ids() if case_ids is None else case_ids)
    except _RunFailed as failure:
        run.log_tail = "\n".join(failure.log_tail)
        run.organizer_error = str(failure)
    except ContractError as error:
        run.succeeded = False
        run.organizer_error = f"metrics.json breaks the contract: {error}"
    except (docker.errors.DockerException, runner.SandboxRefusal, requests.exceptions.RequestException) as error:
        logger.exception("container engine error while evaluating submission %s", submission.pk)
        run.organizer_error = f"the container engine failed: {shown(str(error), 300)}"
    finally:
        run.duration_seconds = time.monotonic() - started
        run.save()
        shutil.rmtree(work, ignore_errors=True)
    logger.warning("evaluation image %s failed on submission %s: %s", image.image_id[:19], submission.pk,
                   run.organizer_error)
    raise ImageEvaluationFailed(HIDDEN_FAILURE if hidden else f"The evaluation failed: {run.organizer_error}")


class _RunFailed(Exception):
    def __init__(self, message: str, log_tail: list[str] | None = None):
        super().__init__(message)
        self.log_tail = log_tail or []


class RemoteResults:
    """What a remote worker host reported for each part it ran: {part key: (metrics.json bytes, log tail, error)}
    (part key: "all" or the part's sorted case ids joined by commas). `result` gives evaluate_with_image the part's
    parsed metrics, or raises _RunFailed with the worker's reason."""

    def __init__(self, results: dict[str, dict]):
        self.results = results

    @staticmethod
    def key(case_ids: list[str] | None) -> str:
        return "all" if case_ids is None else ",".join(sorted(case_ids))

    def result(self, case_ids: list[str] | None) -> tuple[object, list[str]]:
        reported = self.results.get(self.key(case_ids))
        if reported is None:
            raise _RunFailed("the worker reported no result for this part")
        log_tail = [str(line) for line in reported.get("log_tail") or []]
        if reported.get("error"):
            raise _RunFailed(str(reported["error"])[:2000], log_tail)
        return parse_metrics(str(reported.get("metrics") or "").encode()), log_tail


#: Set while the scoring of a remotely evaluated submission runs (evaluation_jobs.record_results).
_remote_results: contextvars.ContextVar[RemoteResults | None] = contextvars.ContextVar(
    "spinebench_remote_evaluation_results", default=None)


def evaluation_limits(phase: Phase, custom: CustomEvaluation) -> runner.Limits:
    return runner.Limits(
        memory_mb=phase.memory_limit_mb, cpus=phase.cpu_limit, pids=phase.pids_limit,
        wall_clock_s=float(custom.time_limit_seconds), output_mb=METRICS_LIMIT_MB, tmp_mb=256, output_files=16,
        gpu=False, log_lines=50,
    )


def stage_part(*, phase: Phase, predictions_path: Path, work: Path, case_ids: list[str] | None) -> dict[str, Path]:
    """Stage one part's predictions (work/input, with predictions.json) and its ground-truth mounts."""
    try:
        stage_predictions(predictions_path, work / "input", case_ids)
    except ContractError as error:
        raise _RunFailed(f"the predictions cannot be given to the image: {error}") from None
    dataset = phase.dataset
    if dataset is None:
        raise _RunFailed("the phase has no test dataset")
    return _data_mounts(dataset, work=work, case_ids=case_ids)


def _run(*, image: EvaluationImage, custom: CustomEvaluation, phase: Phase, submission: Submission,
         predictions_path: Path, work: Path, case_ids: list[str] | None) -> tuple[object, list[str]]:
    """The parsed metrics.json and the log tail of one sandboxed run (of one part's cases, with `case_ids`)."""
    client = runner.docker_client()
    load_evaluation_image(client, image=image, max_image_bytes=custom.image_size_limit_mb << 20)
    mounts = stage_part(phase=phase, predictions_path=predictions_path, work=work, case_ids=case_ids)
    try:
        metrics, log_tail = run_evaluation_image(
            client, image_id=image.image_id, run_as=(image.uid, image.gid), input_dir=work / "input", mounts=mounts,
            limits=evaluation_limits(phase, custom), output=work / "output",
            labels={runner.LABEL_EVALUATION: str(submission.pk)})
    except EvaluationRunFailed as failure:
        raise _RunFailed(str(failure), failure.log_tail) from None
    return parse_metrics(metrics), log_tail


def _data_mounts(dataset, *, work: Path, case_ids: list[str] | None) -> dict[str, Path]:
    """The ground truth and manifest mounts: the dataset's own, or for one part of a split test set copies holding
    only that part's cases (the image never sees the other part's)."""
    manifest = dataset.root / MANIFEST
    if case_ids is None:
        mounts = {GROUND_TRUTH_MOUNT: dataset.ground_truth_dir}
        if manifest.is_file():
            mounts[MANIFEST_MOUNT] = manifest
        return mounts
    try:
        stage_ground_truth_part(dataset.ground_truth_dir, work / "ground_truth", case_ids=set(case_ids),
                                all_case_ids=set(dataset.case_ids()))
    except ContractError as error:
        raise _RunFailed(f"the ground truth cannot be split into the phase's parts: {error}") from None
    mounts = {GROUND_TRUTH_MOUNT: work / "ground_truth"}
    if manifest.is_file():
        part = manifest_part(json.loads(manifest.read_text(encoding="utf-8")), set(case_ids))
        (work / MANIFEST).write_text(json.dumps(part, indent=2), encoding="utf-8")
        mounts[MANIFEST_MOUNT] = work / MANIFEST
    return mounts


def load_evaluation_image(client: docker.DockerClient, *, image: EvaluationImage, max_image_bytes: int) -> None:
    """Make sure the engine has the image, loading its archive without any of its tags."""
    try:
        client.images.get(image.image_id)
        return
    except docker.errors.ImageNotFound:
        pass
    try:
        loaded = client.images.load(untagged_stream(local_copy(image.archive, sha256=image.archive_sha256),
                                                    max_image_bytes=max_image_bytes))
    except (ArchiveError, CacheError) as error:
        raise _RunFailed(f"the stored archive was refused: {error}") from None
    except (docker.errors.ImageLoadError, docker.errors.APIError) as error:
        message = getattr(error, "explanation", None) or str(error)
        raise _RunFailed(f"the engine could not load the image ({shown(message, 300)})") from None
    if image.image_id not in {loaded_image.id for loaded_image in loaded}:
        raise _RunFailed("the archive's image could not be loaded as described by its manifest")
