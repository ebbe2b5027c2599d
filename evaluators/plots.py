"""Figures the platform shows next to the numbers: ROC curves with a bootstrap band and operating points, and
Bland-Altman plots of AASCE angles. matplotlib with the Agg backend (no display needed); each function writes
one PNG and returns its path (and the numbers it drew where those are useful)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from evaluators import metrics, statistics  # noqa: E402

ANGLE_NAMES = ("PT", "MT", "TL")


def roc_band(
    labels: npt.ArrayLike, scores: npt.ArrayLike, *, n_bootstrap: int = 200, seed: int = 0,
    clusters: npt.ArrayLike | None = None, confidence: float = 0.95, grid: int = 101,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr grid, lower tpr, upper tpr): a pointwise percentile band of the ROC curve over the resamples of
    `statistics.bootstrap_samples` (stratified, or clustered when `clusters` is given); each resample's curve is
    read at the grid with the step (maximum tpr at fpr <= x) convention."""
    label_array = np.asarray(labels)
    score_array = np.asarray(scores, dtype=np.float64)
    fpr_grid = np.linspace(0, 1, grid)
    curves = []
    for chunk in statistics.bootstrap_samples(label_array, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters):
        for row in chunk:
            row = row[row >= 0]
            if np.unique(label_array[row]).size < 2:
                continue
            fpr, tpr, _ = metrics.roc_curve(label_array[row], score_array[row])
            curves.append(tpr[np.searchsorted(fpr, fpr_grid, side="right") - 1])
    tail = 100 * (1 - confidence) / 2
    lower, upper = np.percentile(np.array(curves), [tail, 100 - tail], axis=0)
    return fpr_grid, lower, upper


def plot_roc(
    out: str | Path, *, curves: dict[str, dict[str, Any]],
    band: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    points: dict[str, tuple[float, float]] | None = None, hull: bool = False, title: str = "",
) -> Path:
    """ROC figure. `curves`: {name: {"fpr": [...], "tpr": [...]}} (metrics.json "curves" entries) with an optional
    "auc" and "ci" (low, high) per curve for the legend; `band`: (fpr grid, lower, upper) from `roc_band`;
    `points`: {name: (fpr, tpr)} operating points (e.g. the threshold 0.5 of each submission); `hull`: also draw
    the ROC convex hull of the points."""
    figure, axes = plt.subplots(figsize=(5.2, 5))
    if band is not None:
        grid, lower, upper = band
        axes.fill_between(grid, lower, upper, step="post", alpha=0.25, color="tab:blue", label="bootstrap band")
    for name, curve in curves.items():
        label = name
        if curve.get("auc") is not None:
            label += f" (AUC {curve['auc']:.3f}"
            label += f", CI {curve['ci'][0]:.3f}-{curve['ci'][1]:.3f})" if curve.get("ci") else ")"
        axes.step(curve["fpr"], curve["tpr"], where="post", label=label)
    if points:
        coordinates = np.array(list(points.values()), dtype=np.float64)
        axes.scatter(coordinates[:, 0], coordinates[:, 1], color="black", zorder=3, s=18, label="operating points")
        for name, (fpr, tpr) in points.items():
            axes.annotate(name, (fpr, tpr), textcoords="offset points", xytext=(4, -10), fontsize=7)
        if hull:
            vertices = metrics.roc_convex_hull(coordinates)
            axes.plot(vertices[:, 0], vertices[:, 1], "--", color="grey", label="ROC convex hull")
    axes.plot([0, 1], [0, 1], ":", color="lightgrey")
    axes.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="False positive rate", ylabel="True positive rate", title=title)
    axes.legend(loc="lower right", fontsize=7)
    return _save(figure, out)


def bland_altman(ground_truth: npt.ArrayLike, predictions: npt.ArrayLike) -> dict[str, dict[str, float]]:
    """Per angle: bias = mean(p - g) and the 95% limits of agreement bias ± 1.96 SD (SD with ddof = 1)."""
    truth = np.asarray(ground_truth, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64)
    if truth.shape != predicted.shape or truth.ndim != 2 or truth.shape[1] != len(ANGLE_NAMES) or len(truth) < 2:
        raise ValueError(
            f"ground_truth and predictions: expected two (N >= 2, 3) arrays, got {truth.shape} and {predicted.shape}"
        )
    stats: dict[str, dict[str, float]] = {}
    for index, name in enumerate(ANGLE_NAMES):
        difference = predicted[:, index] - truth[:, index]
        bias, spread = difference.mean(), 1.96 * difference.std(ddof=1)
        stats[name] = {"bias": float(bias), "lower": float(bias - spread), "upper": float(bias + spread)}
    return stats


def plot_bland_altman(
    out: str | Path, *, ground_truth: npt.ArrayLike, predictions: npt.ArrayLike, title: str = ""
) -> tuple[Path, dict[str, dict[str, float]]]:
    """Bland-Altman plots of the three Cobb angles (difference p - g against the mean (p + g)/2), with the bias
    and the limits of agreement of `bland_altman`. Returns (path, stats)."""
    truth = np.asarray(ground_truth, dtype=np.float64)
    predicted = np.asarray(predictions, dtype=np.float64)
    stats = bland_altman(truth, predicted)
    figure, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharey=True)
    for index, (name, axis) in enumerate(zip(ANGLE_NAMES, axes)):
        axis.scatter((truth[:, index] + predicted[:, index]) / 2, predicted[:, index] - truth[:, index], s=8, alpha=0.6)
        values = stats[name]
        axis.axhline(values["bias"], color="tab:red", label=f"bias {values['bias']:.2f}°")
        for key in ("lower", "upper"):
            axis.axhline(values[key], color="tab:red", linestyle="--", linewidth=0.8)
        axis.set(title=f"{name}: limits {values['lower']:.1f}° to {values['upper']:.1f}°", xlabel="mean of angles (°)")
        axis.legend(fontsize=7, loc="upper right")
    axes[0].set_ylabel("prediction - ground truth (°)")
    if title:
        figure.suptitle(title)
    return _save(figure, out), stats


def _save(figure: Figure, out: str | Path) -> Path:
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
