"""Scoring any predictions of a submission against its phase's hidden dataset (CSV phases and algorithm phases
alike): `score_predictions(submission, predictions_path)`.

The caller holds the submission's row lock inside a transaction and has moved it to `scoring`. The evaluation, the
status change and the re-ranking of that one phase commit together, so a worker killed half-way leaves nothing
behind and the redelivered task scores exactly once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from spinebench.challenges.models import Phase
from spinebench.challenges.signals import ranking_changed

from .models import Evaluation, Part, PrivateEvaluation, Submission
from .parts import phase_parts
from .status import Status, transition

logger = logging.getLogger(__name__)

#: Shown when scoring fails for a reason that is not the participant's (the detail goes to the log only, since it
#: may quote the hidden ground truth).
PLATFORM_ERROR = "Scoring failed because of a problem on the platform's side; the organizers have been told."


def finite_or_none(value):
    """metrics.json contract: a value that is not a finite number is stored as null (in dicts and lists too)."""
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ImageEvaluationFailed(Exception):
    """An evaluation image did not produce valid metrics; the message is the one safe to show the submitter (the
    organizers' detail is recorded by the runner)."""


#: (submission, predictions path, case ids or None for all) -> metrics of a custom phase on those cases, by running
#: its evaluation image. Registered at ready time by spinebench.algorithms (which runs containers); this app never
#: imports it.
_image_evaluator: Callable[[Submission, Path, list[str] | None], dict] | None = None


def register_image_evaluator(evaluate: Callable[[Submission, Path, list[str] | None], dict]) -> None:
    global _image_evaluator
    _image_evaluator = evaluate


def evaluate_predictions(submission: Submission, predictions_path: Path) -> dict[str, dict]:
    """{part: metrics.json}: {"all": ...} for a phase scored on its whole test set, {"public": ..., "private": ...}
    for a split phase (each part scored on its own cases only, so set-level metrics are computed per part)."""
    from evaluators.contract import CUSTOM_TASK
    from evaluators.tasks import evaluate_parts

    phase = submission.phase
    dataset = phase.dataset
    if dataset is None:
        raise RuntimeError(f"phase {phase} has no dataset to score against")
    parts = phase_parts(phase)
    if phase.task == CUSTOM_TASK:
        if _image_evaluator is None:
            raise RuntimeError("no evaluation image runner is registered (spinebench.algorithms is not installed)")
        if parts is None:
            return {Part.ALL: _image_evaluator(submission, Path(predictions_path), None)}
        return {name: _image_evaluator(submission, Path(predictions_path), cases) for name, cases in parts.items()}
    return evaluate_parts(
        phase.task,
        predictions=Path(predictions_path),
        ground_truth=dataset.ground_truth_dir,
        parts=parts,
        groups=dataset.groups() or None,
    )


def stored_metrics(metrics: dict) -> dict:
    """What an evaluation row keeps of one part's metrics.json: finite numbers or null."""
    return {
        "metrics": {
            "case": finite_or_none(metrics.get("case", {})),
            "aggregates": finite_or_none(metrics.get("aggregates", {})),
        },
        "curves": finite_or_none(metrics.get("curves", {})),
    }


def store_evaluation(*, submission: Submission, parts: dict[str, dict], version: int, duration_seconds: float,
                     published: bool | None = None) -> Evaluation:
    """Write the submission's current evaluation(s) of one scoring: the whole set, or the public part (what
    participants see) and the private part (PrivateEvaluation) of a split phase."""
    shown = Part.PUBLIC if Part.PUBLIC in parts else Part.ALL
    defaults = {"part": shown, "version": version, "duration_seconds": duration_seconds, **stored_metrics(parts[shown])}
    if published is not None:
        defaults["published"] = published
    evaluation, _ = Evaluation.objects.update_or_create(submission=submission, defaults=defaults)
    if Part.PRIVATE in parts:
        PrivateEvaluation.objects.update_or_create(
            submission=submission,
            defaults={"version": version, "duration_seconds": duration_seconds,
                      **stored_metrics(parts[Part.PRIVATE])},
        )
    else:
        PrivateEvaluation.objects.filter(submission=submission).delete()
    return evaluation


def score_predictions(submission: Submission, predictions_path) -> Evaluation | None:
    """Evaluate, store the Evaluation, move the submission to succeeded (or failed with a safe reason) and re-rank
    its phase. Must run inside `transaction.atomic()` with the submission row locked and in status `scoring`."""
    from evaluators.errors import PredictionError

    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("score_predictions must run inside transaction.atomic() with the submission row locked")
    started = time.monotonic()
    try:
        parts = evaluate_predictions(submission, predictions_path)
    except PredictionError as error:
        # The stored file has a random name; call it what the participant knows it as.
        fail(submission, str(error).replace(Path(predictions_path).name, "predictions" + Path(predictions_path).suffix))
        release_failed_upload(submission)
        return None
    except ImageEvaluationFailed as failure:
        fail(submission, str(failure))
        return None
    except Exception:
        logger.exception("scoring submission %s failed", submission.pk)
        fail(submission, PLATFORM_ERROR)
        return None
    evaluation = store_evaluation(
        submission=submission,
        parts=parts,
        version=current_evaluation_version(submission.phase_id),
        duration_seconds=time.monotonic() - started,
        published=submission.phase.auto_publish,
    )
    submission.finished_at = timezone.now()
    submission.save(update_fields=["finished_at"])
    transition(submission, Status.SUCCEEDED, error="")
    if submission.is_baseline:
        from .baseline_runs import judge_baselines

        judge_baselines(submission)  # a method that does not beat its trivial reference is not ranked as the method
    ranking_changed.send(sender=Submission, phase_pk=submission.phase_id)  # the leaderboards app ranks the phase
    return evaluation


def current_evaluation_version(phase_pk: int) -> int:
    """The phase's evaluation version, read under the phase's row lock: a re-score switches the version while holding
    that lock, so a score written in this transaction is labelled with the version it joins (the re-score's last
    step re-evaluates what was scored under the old one while it ran). The re-ranking takes the same lock next."""
    return Phase.objects.select_for_update().values_list("evaluation_version", flat=True).get(pk=phase_pk)


def release_failed_upload(submission: Submission) -> None:
    """A participant's predictions file that failed validation is deleted (and stops counting against their storage
    quota) once the failure has committed; the submission keeps its status and message."""
    name = submission.predictions_file.name
    if submission.is_baseline or not name:
        return
    from .services import release_unreferenced

    Submission.objects.filter(pk=submission.pk).update(predictions_file="")
    submission.predictions_file.name = ""
    release_unreferenced(name)  # a chunked upload stored once may back another submission too


def fail(submission: Submission, reason: str) -> None:
    submission.finished_at = timezone.now()
    submission.save(update_fields=["finished_at"])
    transition(submission, Status.FAILED, error=reason)
