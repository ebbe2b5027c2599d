"""Per-task scoring: turn loaded ground truth and predictions into case metrics and an aggregator.

Each `score_*` function returns a `TaskScores`: the metrics of every case, a function computing the aggregates of
any subset of cases (called for the whole test set and for each group), and optional curve data. Aggregation rules:

- aasce-cobb, metastatic-body-ct, lumbosacral-ct: aggregates are means of the case values (the AASCE SMAPE mean
  equals the challenge formula). Lumbosacral ASSD is not a number when exactly one of prediction and reference has
  the class: such cases are excluded from the mean and counted in ``assd_<class>_undefined``.
- fracture-ct: pooled over the subset's vertebrae / patients (AUCs with bootstrap intervals, scores at 0.5).
- vertebra-labelling-xr: pooled over the subset's vertebrae (identified / all ground-truth vertebrae; localisation
  mean and standard deviation over every vertebra present in both).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import SimpleITK as sitk
from tqdm import tqdm

from evaluators import metrics
from evaluators.errors import PredictionError
from evaluators.formats import SEGMENTATION_TASKS, read_ground_truth_image, read_segmentation
from evaluators.metrics.labels import label_counts
from evaluators.metrics.overlap import concurrency_from_counts, dice_from_counts

FRACTURE_THRESHOLD = 0.5
FRACTURE_BOOTSTRAP = 2000
FRACTURE_SEED = 0
LUMBOSACRAL_CLASSES = {1: "bone", 2: "disc", 3: "nerve"}


@dataclass
class TaskScores:
    case: dict[str, dict[str, float]]
    aggregate: Callable[[list[str]], dict[str, float]]
    curves: dict[str, Any] = field(default_factory=dict)


def mean_aggregate(
    case: dict[str, dict[str, float]], *, undefined_counts: Collection[str] = ()
) -> Callable[[list[str]], dict[str, float]]:
    """Aggregator: the mean over the subset of each case metric, ignoring NaN; for each key in `undefined_counts`
    also `<key>_undefined`, the number of cases left out because the value was NaN."""

    def aggregate(case_ids: list[str]) -> dict[str, float]:
        keys = list(case[case_ids[0]]) if case_ids else []
        result: dict[str, float] = {}
        for key in keys:
            values = np.array([case[case_id][key] for case_id in case_ids], dtype=np.float64)
            finite = values[~np.isnan(values)]
            result[key] = float(finite.mean()) if finite.size else math.nan
            if key in undefined_counts:
                result[f"{key}_undefined"] = float(values.size - finite.size)
        return result

    return aggregate


def score_aasce(ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool = False) -> TaskScores:
    case_ids = list(ground_truth)
    truth = np.array([ground_truth[c]["angles"] for c in case_ids])
    predicted = np.array([predictions[c]["angles"] for c in case_ids])
    per_case = metrics.smape_per_case(truth, predicted)
    errors = np.abs(truth - predicted)
    case = {
        case_id: {"smape": float(s), "mae_pt": float(e[0]), "mae_mt": float(e[1]), "mae_tl": float(e[2])}
        for case_id, s, e in zip(case_ids, per_case, errors)
    }
    return TaskScores(case=case, aggregate=mean_aggregate(case))


def fracture_arrays(
    ground_truth: dict[str, Any], predictions: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Flat vertebra arrays (case, grade, score) and patient arrays (label, score), validating coverage."""
    vertebra_case, grades, vertebra_scores, patient_labels, patient_scores = [], [], [], [], []
    for case_id, truth in ground_truth.items():
        predicted = predictions[case_id]["vertebrae"]
        missing = [name for name in truth["vertebrae"] if name not in predicted]
        if missing:
            raise PredictionError(f"{case_id}: no probability for vertebra(e) {', '.join(missing)}")
        unknown = [name for name in predicted if name not in truth["vertebrae"]]
        if unknown:
            raise PredictionError(
                f"{case_id}: vertebra(e) {', '.join(unknown)} are not among the case's vertebrae (centroids.json)"
            )
        for name, grade in truth["vertebrae"].items():
            vertebra_case.append(case_id)
            grades.append(grade)
            vertebra_scores.append(predicted[name])
        patient = predictions[case_id].get("patient")
        patient_labels.append(int(max(truth["vertebrae"].values(), default=0) >= 1))
        patient_scores.append(patient if patient is not None else max(predicted.values(), default=0.0))
    return (
        np.array(vertebra_case),
        np.array(grades),
        np.array(vertebra_scores, dtype=np.float64),
        np.array(patient_labels),
        np.array(patient_scores, dtype=np.float64),
    )


def _curve(labels: np.ndarray, scores: np.ndarray) -> dict[str, list[float | None]]:
    fpr, tpr, thresholds = metrics.roc_curve(labels, scores)

    def clean(values: np.ndarray) -> list[float | None]:
        return [None if not math.isfinite(v) else float(v) for v in values]

    return {"fpr": clean(fpr), "tpr": clean(tpr), "thresholds": clean(thresholds)}


def score_fracture(ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool = False) -> TaskScores:
    """Patient level: fractured when any vertebra has grade >= 1; score = the patient score when given, else the
    maximum vertebra score. AUC intervals: stratified bootstrap (patients), clustered by patient (vertebrae).
    Per case: whether the patient decision at 0.5 is right, and the fraction of its vertebrae decided right; the
    aggregates pool the same decisions (accuracy_patient, accuracy_vertebra)."""
    case_ids = list(ground_truth)
    vertebra_case, grades, vertebra_scores, patient_labels, patient_scores = fracture_arrays(ground_truth, predictions)
    vertebra_labels = (grades >= 1).astype(int)
    patient_hits = (patient_scores >= FRACTURE_THRESHOLD) == patient_labels.astype(bool)
    vertebra_hits = (vertebra_scores >= FRACTURE_THRESHOLD) == vertebra_labels.astype(bool)
    case = {
        case_id: {
            "accuracy_patient": float(patient_hits[index]),
            "accuracy_vertebra": float(np.mean(vertebra_hits[vertebra_case == case_id]))
            if np.any(vertebra_case == case_id)
            else math.nan,
        }
        for index, case_id in enumerate(case_ids)
    }

    def aggregate(subset: list[str]) -> dict[str, float]:
        patients = np.isin(np.array(case_ids), subset)
        vertebrae = np.isin(vertebra_case, subset)
        result: dict[str, float] = {}
        for level, labels, scores, clusters in (
            ("patient", patient_labels[patients], patient_scores[patients], None),
            ("vertebra", vertebra_labels[vertebrae], vertebra_scores[vertebrae], vertebra_case[vertebrae]),
        ):
            auc, low, high = metrics.roc_auc_ci(
                labels, scores, n_bootstrap=FRACTURE_BOOTSTRAP, seed=FRACTURE_SEED, clusters=clusters
            )
            result |= {f"auc_{level}": auc, f"auc_{level}_ci_low": low, f"auc_{level}_ci_high": high}
            scores_at = metrics.binary_scores(labels, scores, threshold=FRACTURE_THRESHOLD)
            result |= {f"{name}_{level}": value for name, value in scores_at.items()}
            hits = patient_hits[patients] if level == "patient" else vertebra_hits[vertebrae]
            result[f"accuracy_{level}"] = float(hits.mean()) if hits.size else math.nan
        recalls = metrics.recall_per_grade(grades[vertebrae], vertebra_scores[vertebrae], threshold=FRACTURE_THRESHOLD)
        result |= {f"recall_grade{grade}": recalls.get(grade, math.nan) for grade in (1, 2, 3)}
        return result

    curves = {
        "patient": _curve(patient_labels, patient_scores),
        "vertebra": _curve(vertebra_labels, vertebra_scores),
    }
    return TaskScores(case=case, aggregate=aggregate, curves=curves)


def score_labelling(ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool = False) -> TaskScores:
    """Identification per case (metrics.identification, 20 mm), pooled over vertebrae for the aggregates."""
    outcomes = {
        case_id: metrics.identification(truth["centroids"], predictions[case_id]["centroids"])
        for case_id, truth in ground_truth.items()
    }
    case = {
        case_id: {
            "id_rate": outcome.rate,
            "loc_mean_mm": outcome.localisation_mean,
            "loc_std_mm": outcome.localisation_std,
            "false_detections": float(len(outcome.extra)),
        }
        for case_id, outcome in outcomes.items()
    }

    def aggregate(subset: list[str]) -> dict[str, float]:
        identified = sum(len(outcomes[c].identified) for c in subset)
        total = sum(len(outcomes[c].identified) + len(outcomes[c].missed) for c in subset)
        distances = [d for c in subset for d in outcomes[c].distances.values()]
        return {
            "id_rate": identified / total if total else math.nan,
            "loc_mean_mm": float(np.mean(distances)) if distances else math.nan,
            "loc_std_mm": float(np.std(distances)) if distances else math.nan,
            "false_detections": float(sum(len(outcomes[c].extra) for c in subset)),
        }

    return TaskScores(case=case, aggregate=aggregate)


def _segmentation_pairs(
    task_id: str, ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool
) -> Iterator[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    """Yield (case_id, reference array, predicted array, spacing in numpy axis order), one case at a time."""
    for case_id in tqdm(list(ground_truth), desc=f"scoring {task_id}", unit="case", disable=not progress):
        reference_image = read_ground_truth_image(ground_truth[case_id])
        reference = sitk.GetArrayFromImage(reference_image)
        predicted = read_segmentation(
            predictions[case_id], case_id=case_id, reference=reference_image, allowed_labels=SEGMENTATION_TASKS[task_id]
        )
        yield case_id, reference, predicted, tuple(reversed(reference_image.GetSpacing()))


def score_metastatic(
    ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool = False
) -> TaskScores:
    """Dice and Concurrency of the vertebral-body mask (label 1) per case; both empty counts 1.0."""
    case: dict[str, dict[str, float]] = {}
    for case_id, reference, predicted, _ in _segmentation_pairs(
        "metastatic-body-ct", ground_truth, predictions, progress=progress
    ):
        counts = label_counts(reference, predicted)
        case[case_id] = {"dice": dice_from_counts(counts), "concurrency": concurrency_from_counts(counts)}
    return TaskScores(case=case, aggregate=mean_aggregate(case))


def score_lumbosacral(
    ground_truth: dict[str, Any], predictions: dict[str, Any], *, progress: bool = False
) -> TaskScores:
    """Dice and ASSD (in voxels, as the paper reports) per class bone / disc / nerve, and their class means."""
    case: dict[str, dict[str, float]] = {}
    labels = list(LUMBOSACRAL_CLASSES)
    for case_id, reference, predicted, _ in _segmentation_pairs(
        "lumbosacral-ct", ground_truth, predictions, progress=progress
    ):
        distances = metrics.surface_distances(reference, predicted, spacing=1.0, labels=labels, units="voxels")
        values: dict[str, float] = {}
        for label, name in LUMBOSACRAL_CLASSES.items():
            values[f"dice_{name}"] = distances[label].dice
            values[f"assd_{name}"] = distances[label].assd
        values["dice_mean"] = float(np.mean([distances[label].dice for label in labels]))
        assds = [distances[label].assd for label in labels]
        values["assd_mean"] = float(np.mean(assds)) if not any(map(math.isnan, assds)) else math.nan
        case[case_id] = values
    undefined = [f"assd_{name}" for name in LUMBOSACRAL_CLASSES.values()] + ["assd_mean"]
    return TaskScores(case=case, aggregate=mean_aggregate(case, undefined_counts=undefined))
