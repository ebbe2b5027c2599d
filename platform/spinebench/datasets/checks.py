"""Checking a SpineBench dataset folder before it becomes a Dataset (an organizer's upload): the manifest, every
listed case's inputs and the ground truth, read with the evaluators' own readers. The result is a report an organizer
reads before attaching the dataset to a phase; a folder that could not be scored or served is refused with a
DatasetCheckError naming the file and what was expected there (paths relative to the dataset folder)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError

from spinebench.challenges import registry

#: What a case's input folder holds per task (docs/formats.md), named in refusals.
EXPECTED_INPUTS = {
    "aasce-cobb": "image.png",
    "vertebra-labelling-xr": "image.nii.gz and meta.json",
    "fracture-ct": "image.nii.gz, vertebrae.nii.gz and centroids.json",
    "metastatic-body-ct": "image.nii.gz",
    "lumbosacral-ct": "image.nii.gz",
}
#: What ground_truth/ holds per task (docs/formats.md), named in refusals.
EXPECTED_GROUND_TRUTH = {
    "aasce-cobb": "angles.csv (case_id,pt,mt,tl) or landmarks.csv",
    "vertebra-labelling-xr": "<case_id>.json per case",
    "fracture-ct": "vertebrae.csv (case_id,vertebra,grade,shape)",
    "metastatic-body-ct": "<case_id>.nii.gz per case",
    "lumbosacral-ct": "<case_id>.nii.gz per case",
}
LISTED = 20
LARGEST = 5


class DatasetCheckError(ValueError):
    """The folder cannot become a dataset; the message names the file and what was expected, safe to show."""


def _relative(message: str, root: Path) -> str:
    """Messages of the layout readers carry absolute paths of the scratch folder: show them from the dataset's top."""
    for prefix in (str(root.resolve()), str(root)):
        message = message.replace(prefix + "/", "").replace(prefix, ".")
    return message


def _listing(items: list[str]) -> str:
    shown = ", ".join(items[:LISTED])
    return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def _size_report(root: Path) -> dict:
    files = _files(root)
    sizes = {path: path.stat().st_size for path in files}
    inputs, truth = root / "inputs", root / "ground_truth"
    largest = sorted(sizes.items(), key=lambda item: -item[1])[:LARGEST]
    return {
        "files": len(files),
        "bytes": sum(sizes.values()),
        "inputs_bytes": sum(size for path, size in sizes.items() if path.is_relative_to(inputs)),
        "ground_truth_bytes": sum(size for path, size in sizes.items() if path.is_relative_to(truth)),
        "largest_files": [[str(path.relative_to(root)), size] for path, size in largest],
    }


def _labelled_cases(root: Path, task: str) -> set[str] | None:
    """The case ids ground_truth/ has labels for (None: a custom task, whose evaluation image reads its own)."""
    from evaluators.errors import GroundTruthError
    from evaluators.formats import ground_truth_cases

    if task == registry.CUSTOM_TASK:
        return None
    folder = root / "ground_truth"
    if not folder.is_dir() or not _files(folder):
        return set()
    try:
        return set(ground_truth_cases(task, folder))
    except (GroundTruthError, ValueError) as error:
        raise DatasetCheckError(
            f"ground_truth/: {_relative(str(error), root)}; expected {EXPECTED_GROUND_TRUTH[task]}"
        ) from None


def check_dataset_folder(root: Path, *, task: str = "", split: str = "") -> dict:
    """The report of a SpineBench dataset folder, or DatasetCheckError. `task` / `split`, when given, are what the
    uploader said the dataset is: the manifest must agree. A test split must have ground truth for every case
    (it is what submissions are scored against); a training split may lack some labels, which the report lists."""
    from evaluators.layout import LayoutError, read_manifest

    root = Path(root)
    try:
        manifest = read_manifest(root)
    except LayoutError as error:
        raise DatasetCheckError(_relative(str(error), root)) from None
    try:
        registry.validate_task_id(manifest.task)
    except ValidationError as error:
        raise DatasetCheckError(f"dataset.json: task: {' '.join(error.messages)}") from None
    if task and manifest.task != task:
        raise DatasetCheckError(f"dataset.json: task is {manifest.task!r}, expected {task!r}")
    if split and manifest.split != split:
        raise DatasetCheckError(f"dataset.json: split is {manifest.split!r}, expected {split!r}")
    if not manifest.cases:
        raise DatasetCheckError("dataset.json: cases is empty; expected at least one case")
    expected_inputs = EXPECTED_INPUTS.get(manifest.task, "the case's input files")
    for case_id in manifest.case_ids:
        folder = root / "inputs" / case_id
        if not folder.is_dir() or not _files(folder):
            raise DatasetCheckError(
                f"inputs/{case_id}/: missing or empty; dataset.json lists case {case_id!r}, expected {expected_inputs}"
            )
    labelled = _labelled_cases(root, manifest.task)
    missing = [] if labelled is None else [case_id for case_id in manifest.case_ids if case_id not in labelled]
    if missing and manifest.split == "test":
        raise DatasetCheckError(
            f"ground_truth/: no ground truth for case(s) {_listing(missing)}; a test split is scored against every "
            f"case, expected {EXPECTED_GROUND_TRUTH[manifest.task]}"
        )
    groups = Counter(case.group or "" for case in manifest.cases)
    return {
        "task": manifest.task,
        "split": manifest.split,
        "source": manifest.source,
        "labels_model_derived": manifest.labels_model_derived,
        "cases": len(manifest.cases),
        "groups": {group: count for group, count in sorted(groups.items()) if group},
        "labelled_cases": None if labelled is None else len(manifest.cases) - len(missing),
        "missing_labels": missing[:LISTED],
        "missing_labels_count": len(missing),
        **_size_report(root),
    }
