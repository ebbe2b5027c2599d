"""Pure metric functions over numpy arrays (formulas and edge-case rules in each docstring)."""

from evaluators.metrics.identification import Identification, identification
from evaluators.metrics.overlap import concurrency, dice
from evaluators.metrics.regression import mean_absolute_error, smape, smape_per_case
from evaluators.metrics.roc import (
    binary_scores,
    recall_per_grade,
    roc_auc,
    roc_auc_ci,
    roc_convex_hull,
    roc_curve,
)
from evaluators.metrics.surface import SurfaceDistances, assd, hd95, masd, surface_distances

__all__ = [
    "Identification",
    "SurfaceDistances",
    "assd",
    "binary_scores",
    "concurrency",
    "dice",
    "hd95",
    "identification",
    "masd",
    "mean_absolute_error",
    "recall_per_grade",
    "roc_auc",
    "roc_auc_ci",
    "roc_convex_hull",
    "roc_curve",
    "smape",
    "smape_per_case",
    "surface_distances",
]
