"""One case's prediction of a stored submission, for the case viewers.

A segmentation submission is a zip of case folders that can weigh gigabytes; a viewer asks for one case per request
(one per slice), so only that case's folder is unpacked, into a temporary directory that is gone when the answer is
read. Submissions were checked when they were scored; this reads them again with the evaluator's own reader."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

from spinebench.uploads.local_cache import local_copy

from .models import Submission
from .uploads import predictions_location


def case_prediction(submission: Submission, case_id: str, read):
    """`read(prediction)` of `case_id` (a path for segmentations, a dict otherwise) while it is on disk."""
    from evaluators.formats import load_predictions

    task = submission.phase.task
    stored = local_copy(submission.predictions_file)
    if stored.suffix == ".zip":
        with zipfile.ZipFile(stored) as archive, tempfile.TemporaryDirectory(prefix="spinebench-case-") as tmp:
            root = Path(tmp).resolve()
            members = [name for name in archive.namelist() if name.split("/", 1)[0] == case_id]
            if members:  # a zip of case folders; otherwise (one CSV inside) the whole file is read below
                for name in members:
                    if not (root / name).resolve().is_relative_to(root):
                        raise ValueError(f"{stored.name}: member {name!r} escapes the archive")
                archive.extractall(root, members)
                return read(load_predictions(task, root, case_ids=[case_id])[case_id])
    scored = list(submission.evaluation.case_metrics)  # the reader checks the file covers exactly these
    with predictions_location(submission) as path:
        return read(load_predictions(task, path, case_ids=scored)[case_id])
