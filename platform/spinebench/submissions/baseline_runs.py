"""Running a registered baseline method for a phase: train on the challenge's training split (or reuse a
checkpoint), predict the phase's test inputs, and submit the predictions as a baseline submission.

The method never sees the test ground truth: it predicts from a shadow folder holding only the manifest (case ids
and groups) and a link to `inputs/`."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from django.conf import settings

from spinebench.challenges.models import Phase
from spinebench.datasets.models import Dataset

from .models import Submission
from .services import submit_baseline

logger = logging.getLogger(__name__)


class BaselineRunError(RuntimeError):
    """The baseline cannot run for this phase (no training data, no test inputs, unknown method)."""


def training_dataset_for(phase: Phase) -> Dataset:
    if phase.training_dataset is not None:
        return phase.training_dataset
    found = Dataset.objects.filter(challenge=phase.challenge, task=phase.task, split=Dataset.Split.TRAIN).first()
    if found is None:
        raise BaselineRunError(f"{phase}: no training dataset of task {phase.task} in challenge {phase.challenge.slug}")
    return found


def inputs_only_view(dataset: Dataset, folder: Path) -> Path:
    """A dataset folder with the manifest (ids and groups only) and `inputs/` linked: no ground truth in it."""
    from evaluators.layout import CaseEntry, Manifest, read_manifest, write_manifest

    manifest = read_manifest(dataset.root)
    write_manifest(
        folder,
        Manifest(task=manifest.task, split=manifest.split, domain=manifest.domain, source=manifest.source,
                 cases=tuple(CaseEntry(id=case.id, group=case.group) for case in manifest.cases)),
    )
    os.symlink(dataset.root / "inputs", folder / "inputs", target_is_directory=True)
    return folder


def default_checkpoint(phase: Phase, method: str, preset: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "baseline-checkpoints" / phase.challenge.slug / f"{phase.task}-{method}-{preset}.pt"


def run_baseline(*, phase: Phase, method: str, preset: str = "tiny", device: str = "auto",
                 checkpoint: Path | None = None, progress: bool = True) -> Submission:
    """Train (unless `checkpoint` exists), predict the phase's inputs and queue the predictions for scoring."""
    from baselines import api

    if phase.dataset is None or not phase.dataset.exists():
        raise BaselineRunError(f"{phase}: the phase has no dataset folder to predict")
    checkpoint = Path(checkpoint) if checkpoint else default_checkpoint(phase, method, preset)
    if not checkpoint.is_file():
        training = training_dataset_for(phase)
        if not training.exists():
            raise BaselineRunError(f"{phase}: training dataset folder {training.root} is missing")
        logger.info("training %s/%s (%s preset) on %s", phase.task, method, preset, training)
        api.train(phase.task, method, preset=preset, data_dir=training.root, out=checkpoint, device=device, progress=progress)
    with tempfile.TemporaryDirectory(prefix="spinebench-baseline-") as tmp:
        data_dir = inputs_only_view(phase.dataset, Path(tmp) / "data")
        out = Path(tmp) / ("predictions.csv" if phase.takes_csv else "predictions")
        predictions = api.predict(phase.task, method, checkpoint=checkpoint, data_dir=data_dir, out=out, device=device,
                                  progress=progress)
        return submit_baseline(phase=phase, method=method, predictions_path=predictions)
