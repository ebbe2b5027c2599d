"""Scoring a custom phase's submission with its evaluation image on a remote container worker host (no database, no
shared disk; docs/workers.md). The site does everything but run the container: it claims the submission (queued ->
scoring), stages each part's predictions (with predictions.json) and ground truth exactly as evaluation_images does
for its own workers, and names them, the image archive and the manifest by signed, expiring URLs; the worker runs
the image in the sandbox (job_worker.run_evaluation_image, the same code as on the site's hosts) and reports each
part's metrics.json. The site then scores through the one path (scoring.score_predictions -> evaluate_with_image),
which validates the metrics against the phase's declaration and records the run for the organizers.

A claim answers a ticket (signed: the submission, the staging folder and the worker token); only that token's
report with that ticket is taken, once, while the submission is still `scoring`."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.core import signing
from django.db import OperationalError, transaction
from django.utils import timezone

from evaluators.contract import GROUND_TRUTH_MOUNT, MANIFEST_MOUNT
from spinebench.evaluation.images import CustomEvaluation
from spinebench.submissions.models import Submission
from spinebench.submissions.parts import phase_parts
from spinebench.submissions.scoring import fail, score_predictions
from spinebench.submissions.status import Status, transition
from spinebench.submissions.uploads import UploadError, predictions_location

from .evaluation_images import RemoteResults, _remote_results, _RunFailed, evaluation_limits, stage_part
from .jobs import JobRefused, Refs

logger = logging.getLogger(__name__)

SALT = "spinebench.algorithms.evaluation-ticket"
KEY = re.compile(r"^[0-9a-f]{32}$")


def staging_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "evaluation-jobs"


def claim(submission_pk: int, *, token_pk: int, refs: Refs) -> dict:
    """Take a queued custom-phase submission for scoring and describe the evaluation runs (one per part)."""
    with transaction.atomic():
        submission = Submission.objects.select_for_update().select_related("phase").filter(pk=submission_pk).first()
        if submission is None:
            return {"outcome": "gone"}
        if submission.status == Status.QUEUED:
            submission.started_at = timezone.now()
            submission.save(update_fields=["started_at"])
            transition(submission, Status.SCORING)
        elif submission.status != Status.SCORING:  # a redelivered message after a worker died is taken again
            return {"outcome": f"nothing to do: {submission.status}"}
    phase = submission.phase
    custom = CustomEvaluation.objects.select_related("image").filter(phase=phase).first()
    if custom is None or custom.image is None or phase.dataset is None:
        return {"outcome": _score(submission_pk, RemoteResults({}))}  # fails with the reason evaluate_with_image gives
    key = uuid.uuid4().hex
    work = staging_root() / f"{submission_pk}-{key}"
    parts = phase_parts(phase)
    planned = [None] if parts is None else list(parts.values())
    described = []
    try:
        with predictions_location(submission) as predictions_path:
            for index, case_ids in enumerate(planned):
                folder = work / str(index)
                mounts = stage_part(phase=phase, predictions_path=Path(predictions_path), work=folder,
                                    case_ids=case_ids)
                described.append({
                    "key": RemoteResults.key(case_ids),
                    "input": refs.folder(folder / "input"),
                    "ground_truth": refs.folder(mounts[GROUND_TRUTH_MOUNT]),
                    "manifest": refs.path(mounts[MANIFEST_MOUNT]) if MANIFEST_MOUNT in mounts else None,
                })
    except (UploadError, _RunFailed) as problem:
        shutil.rmtree(work, ignore_errors=True)
        if isinstance(problem, UploadError):
            return {"outcome": _fail(submission_pk, str(problem))}
        error = {"error": str(problem)}
        return {"outcome": _score(submission_pk, RemoteResults({RemoteResults.key(ids): error for ids in planned}))}
    image = custom.image
    return {"outcome": "claimed", "job": {
        "submission": submission_pk,
        "ticket": signing.dumps({"s": submission_pk, "k": key, "t": token_pk}, salt=SALT),
        "image": {"id": image.image_id, "run_as": [image.uid, image.gid],
                  "archive": refs.file(str(image.archive), image.archive_sha256),
                  "max_image_bytes": custom.image_size_limit_mb << 20},
        "limits": dataclasses.asdict(evaluation_limits(phase, custom)),
        "parts": described,
    }}


def record_results(submission_pk: int, *, token_pk: int, ticket: str, results: object) -> str:
    """Score the submission with the metrics a worker reported for each part ("scored", "failed" or "nothing to
    do: ..."); JobRefused for a ticket that is not this token's claim of this submission, or a malformed report."""
    try:
        claimed = signing.loads(ticket, salt=SALT, max_age=int(settings.SPINEBENCH_WORKER_URL_TTL_S) * 24)
    except (signing.BadSignature, TypeError, ValueError):
        raise JobRefused("the ticket is not valid (claim the evaluation again)") from None
    if not isinstance(claimed, dict) or claimed.get("s") != submission_pk or claimed.get("t") != token_pk \
            or not KEY.match(str(claimed.get("k"))):
        raise JobRefused("the ticket was issued for another submission or worker token")
    if not isinstance(results, dict) or not all(isinstance(value, dict) for value in results.values()):
        raise JobRefused("results are {part key: {metrics | error, log_tail}}")
    try:
        return _score(submission_pk, RemoteResults(results))
    finally:
        shutil.rmtree(staging_root() / f"{submission_pk}-{claimed['k']}", ignore_errors=True)


def _score(submission_pk: int, results: RemoteResults) -> str:
    with transaction.atomic():
        try:
            submission = (Submission.objects.select_for_update(nowait=True, of=("self",))
                          .select_related("phase__dataset_link__dataset").get(pk=submission_pk))
        except OperationalError:
            return "another worker is scoring it"
        if submission.status != Status.SCORING:
            return f"nothing to do: {submission.status}"
        reset = _remote_results.set(results)
        try:
            evaluation = score_predictions(submission, Path("remote-evaluation"))
        finally:
            _remote_results.reset(reset)
    return "scored" if evaluation else "failed"


def _fail(submission_pk: int, reason: str) -> str:
    with transaction.atomic():
        submission = Submission.objects.select_for_update().get(pk=submission_pk)
        if submission.status == Status.SCORING:
            fail(submission, reason)
    return "failed"


def results_from_payload(payload: object) -> dict:
    """The `results` of a report: a JSON object given as such or as a JSON string (multipart forms)."""
    if isinstance(payload, str):
        try:
            return json.loads(payload)
        except json.JSONDecodeError:
            raise JobRefused("results: not JSON") from None
    if not isinstance(payload, dict):
        raise JobRefused("results: a JSON object")
    return payload
