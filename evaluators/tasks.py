"""The task registry: one entry per challenge task, with its inputs, prediction formats, metrics and evaluator.

`evaluate(task_id, *, predictions, ground_truth, groups=None)` returns the metrics.json object
``{"case": {case_id: {metric: value}}, "aggregates": {metric: value}}`` (plus ``"curves"`` for fracture-ct), values
floats or None (not a number). Aggregates are reported for all cases as ``metric`` and per group as
``metric@group``; groups come from the `groups` argument, else from the dataset manifest, and for
vertebra-labelling-xr also from each case's view (``id_rate@coronal``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluators import formats, scoring


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    direction: str  # "higher" | "lower": which values are better
    unit: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    input_kind: str  # "2d-radiograph" | "3d-ct"
    prediction_formats: tuple[str, ...]  # "csv" (one file per phase) and/or "case-folder" (PRED/<case_id>/...)
    output_files: tuple[str, ...]  # what an algorithm container writes to /output (any one of them)
    metrics: tuple[Metric, ...]
    primary: str
    scorer: Callable[..., scoring.TaskScores]

    def metric(self, key: str) -> Metric:
        """The metric for `key`, also for group keys `metric@group`."""
        base = key.split("@", 1)[0]
        for metric in self.metrics:
            if metric.key == base:
                return metric
        raise KeyError(f"task {self.id} has no metric {key!r}")

    def evaluate(
        self, *, predictions: str | Path, ground_truth: str | Path, groups: dict[str, str] | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        return evaluate(self.id, predictions=predictions, ground_truth=ground_truth, groups=groups, progress=progress)


def _higher(key: str, title: str, unit: str = "") -> Metric:
    return Metric(key=key, title=title, direction="higher", unit=unit)


def _lower(key: str, title: str, unit: str = "") -> Metric:
    return Metric(key=key, title=title, direction="lower", unit=unit)


def _fracture_metrics() -> tuple[Metric, ...]:
    result = []
    for level in ("patient", "vertebra"):
        result += [
            _higher(f"auc_{level}", f"ROC AUC ({level} level)"),
            _higher(f"auc_{level}_ci_low", f"ROC AUC {level} level, 95% CI lower bound"),
            _higher(f"auc_{level}_ci_high", f"ROC AUC {level} level, 95% CI upper bound"),
            _higher(f"recall_{level}", f"Recall at 0.5 ({level} level)"),
            _higher(f"precision_{level}", f"Precision at 0.5 ({level} level)"),
            _higher(f"f1_{level}", f"F1 at 0.5 ({level} level)"),
            _higher(f"specificity_{level}", f"Specificity at 0.5 ({level} level)"),
            _higher(f"accuracy_{level}", f"Accuracy at 0.5 ({level} level)"),
        ]
    result += [_higher(f"recall_grade{g}", f"Recall at 0.5 of Genant grade {g} vertebrae") for g in (1, 2, 3)]
    return tuple(result)


def _lumbosacral_metrics() -> tuple[Metric, ...]:
    result = [_higher("dice_mean", "Dice, mean of bone, disc and nerve")]
    for name in scoring.LUMBOSACRAL_CLASSES.values():
        result.append(_higher(f"dice_{name}", f"Dice ({name})"))
    result.append(_lower("assd_mean", "ASSD, mean of bone, disc and nerve", "voxels"))
    for name in scoring.LUMBOSACRAL_CLASSES.values():
        result.append(_lower(f"assd_{name}", f"Average symmetric surface distance ({name})", "voxels"))
    for key in ["assd_mean", *(f"assd_{name}" for name in scoring.LUMBOSACRAL_CLASSES.values())]:
        result.append(
            _lower(f"{key}_undefined", f"Cases without {key} (class in only one of prediction/reference)", "cases")
        )
    return tuple(result)


TASKS: dict[str, Task] = {
    task.id: task
    for task in (
        Task(
            id="aasce-cobb",
            title="AASCE 2019: Cobb angles from AP spinal radiographs",
            input_kind="2d-radiograph",
            prediction_formats=("csv", "case-folder"),
            output_files=("angles.json", "landmarks.json"),
            metrics=(
                _lower("smape", "SMAPE of the three Cobb angles", "%"),
                _lower("mae_pt", "Mean absolute error, proximal-thoracic angle", "deg"),
                _lower("mae_mt", "Mean absolute error, main-thoracic angle", "deg"),
                _lower("mae_tl", "Mean absolute error, thoracolumbar/lumbar angle", "deg"),
            ),
            primary="smape",
            scorer=scoring.score_aasce,
        ),
        Task(
            id="fracture-ct",
            title="Vertebral fracture detection in CT",
            input_kind="3d-ct",
            prediction_formats=("csv", "case-folder"),
            output_files=("fractures.json",),
            metrics=_fracture_metrics(),
            primary="auc_patient",
            scorer=scoring.score_fracture,
        ),
        Task(
            id="metastatic-body-ct",
            title="Vertebral body segmentation in metastatic spine CT",
            input_kind="3d-ct",
            prediction_formats=("case-folder",),
            output_files=("segmentation.nii.gz", "segmentation.mha", "segmentation.nrrd"),
            metrics=(_higher("dice", "Dice"), _higher("concurrency", "Concurrency")),
            primary="dice",
            scorer=scoring.score_metastatic,
        ),
        Task(
            id="vertebra-labelling-xr",
            title="Vertebra labelling in spine radiographs",
            input_kind="2d-radiograph",
            prediction_formats=("csv", "case-folder"),
            output_files=("centroids.json",),
            metrics=(
                _higher("id_rate", "Identification rate (20 mm, nearest vertebra)"),
                _lower("loc_mean_mm", "Localisation distance, mean", "mm"),
                _lower("loc_std_mm", "Localisation distance, standard deviation", "mm"),
                _lower("false_detections", "Predicted labels absent from the ground truth", "vertebrae"),
            ),
            primary="id_rate",
            scorer=scoring.score_labelling,
        ),
        Task(
            id="lumbosacral-ct",
            title="Lumbosacral bone, disc and nerve segmentation in CT",
            input_kind="3d-ct",
            prediction_formats=("case-folder",),
            output_files=("segmentation.nii.gz", "segmentation.mha", "segmentation.nrrd"),
            metrics=_lumbosacral_metrics(),
            primary="dice_mean",
            scorer=scoring.score_lumbosacral,
        ),
    )
}


def get_task(task_id: str) -> Task:
    try:
        return TASKS[task_id]
    except KeyError:
        raise KeyError(f"unknown task {task_id!r}; expected one of {', '.join(TASKS)}") from None


def _json_value(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _groupings(
    task_id: str, ground_truth: dict[str, Any], groups: dict[str, str] | None
) -> list[dict[str, str]]:
    groupings = [groups] if groups else []
    if task_id == "vertebra-labelling-xr":
        views = {case_id: truth["view"] for case_id, truth in ground_truth.items() if truth.get("view")}
        if views:
            groupings.append(views)
    return groupings


def evaluate(
    task_id: str, *, predictions: str | Path, ground_truth: str | Path, groups: dict[str, str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Score `predictions` (a phase CSV file or a folder of case folders) against `ground_truth` (a dataset
    folder or its ground_truth/ folder). The case list is the manifest's when one is found, else the ground
    truth's. `groups`: {case_id: group}; defaults to the manifest's groups."""
    return evaluate_parts(
        task_id, predictions=predictions, ground_truth=ground_truth, parts=None, groups=groups, progress=progress
    )[WHOLE]


#: The part name `evaluate_parts` reports the whole test set under when it is not split.
WHOLE = "all"


def evaluate_parts(
    task_id: str, *, predictions: str | Path, ground_truth: str | Path, parts: Mapping[str, Collection[str]] | None,
    groups: dict[str, str] | None = None, progress: bool = False,
) -> dict[str, dict[str, Any]]:
    """`evaluate` once per part of a split test set: the predictions are read and validated against the whole
    case list once, then each part ({part name: case ids}, e.g. public and private) is scored on its own cases
    only, so that set-level metrics (ROC AUC, identification rates) and group aggregates are computed on that part
    alone. `parts=None` scores the whole set as the one part `WHOLE`. Returns {part name: metrics.json}."""
    task = get_task(task_id)
    source = formats.GroundTruthSource.locate(ground_truth)
    truth = formats.load_ground_truth(task_id, ground_truth)
    if groups is None and source.manifest is not None:
        groups = source.manifest.groups()
    predicted = formats.load_predictions(task_id, predictions, case_ids=list(truth))
    if parts is None:
        parts = {WHOLE: list(truth)}
    results = {}
    for name, case_ids in parts.items():
        chosen = set(case_ids)
        unknown = sorted(chosen - set(truth))
        if unknown:
            raise ValueError(f"parts[{name!r}]: cases not in the ground truth: {', '.join(unknown[:5])}")
        if not chosen:
            raise ValueError(f"parts[{name!r}]: no cases")
        part_truth = {case_id: value for case_id, value in truth.items() if case_id in chosen}
        part_predicted = {case_id: value for case_id, value in predicted.items() if case_id in chosen}
        results[name] = _score(task, part_truth, part_predicted, groups=groups, progress=progress)
    return results


def _score(
    task: Task, truth: dict[str, Any], predicted: dict[str, Any], *, groups: dict[str, str] | None, progress: bool
) -> dict[str, Any]:
    scores = task.scorer(truth, predicted, progress=progress)
    aggregates = dict(scores.aggregate(list(truth)))
    for grouping in _groupings(task.id, truth, groups):
        for group in sorted(set(grouping.values())):
            members = [case_id for case_id in truth if grouping.get(case_id) == group]
            if members:
                aggregates |= {f"{key}@{group}": value for key, value in scores.aggregate(members).items()}
    result = {
        "case": {case_id: {k: _json_value(v) for k, v in values.items()} for case_id, values in scores.case.items()},
        "aggregates": {key: _json_value(value) for key, value in aggregates.items()},
    }
    if scores.curves:
        result["curves"] = scores.curves
    return result
