"""Angle regression metrics for AASCE: SMAPE over the three Cobb angles and the mean absolute error per angle."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def _paired_angles(
    ground_truth: npt.ArrayLike, predictions: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    truth = np.asarray(ground_truth, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64)
    if truth.ndim != 2 or truth.shape[1] != 3:
        raise ValueError(f"ground_truth: expected shape (N, 3) of angles, got {truth.shape}")
    if predicted.shape != truth.shape:
        raise ValueError(f"predictions: expected shape {truth.shape} like ground_truth, got {predicted.shape}")
    for name, values in (("ground_truth", truth), ("predictions", predicted)):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"{name}: every angle must be a finite number")
    return truth, predicted


def smape_per_case(ground_truth: npt.ArrayLike, predictions: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Per-image symmetric mean absolute percentage error, in percent (0-100).

    s_i = 100 * sum_j |g_ij - p_ij| / sum_j (g_ij + p_ij): one ratio of sums per image, no factor 2. An image whose
    six angles are all zero (0/0, for which the official script has no rule) counts as 0 error.
    """
    truth, predicted = _paired_angles(ground_truth, predictions)
    numerator = np.abs(truth - predicted).sum(axis=1)
    denominator = (truth + predicted).sum(axis=1)
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, 100.0 * numerator / safe)


def smape(ground_truth: npt.ArrayLike, predictions: npt.ArrayLike) -> float:
    """AASCE SMAPE = 100/N * sum_i sum_j |g_ij - p_ij| / sum_j (g_ij + p_ij), the mean of `smape_per_case`."""
    return float(smape_per_case(ground_truth, predictions).mean())


def mean_absolute_error(ground_truth: npt.ArrayLike, predictions: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mean absolute error per column, MAE_j = 1/N * sum_i |g_ij - p_ij| (degrees for [PT, MT, TL])."""
    truth, predicted = _paired_angles(ground_truth, predictions)
    return np.asarray(np.abs(truth - predicted).mean(axis=0), dtype=np.float64)
