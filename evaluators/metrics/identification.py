"""Vertebra identification rate and localisation distance (vertebra labelling)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Identification:
    """Outcome of matching predicted to ground-truth vertebra centroids.

    identified: ground-truth labels whose prediction passes the nearest-vertebra rule; missed: the other
    ground-truth labels (not predicted, too far, or nearer to another vertebra); extra: predicted labels absent
    from the ground truth (false detections); distances: |prediction - truth| in mm per label present in both.
    """

    identified: tuple[str, ...]
    missed: tuple[str, ...]
    extra: tuple[str, ...]
    distances: dict[str, float]

    @property
    def rate(self) -> float:
        """identified / number of ground-truth vertebrae (NaN when there is none)."""
        total = len(self.identified) + len(self.missed)
        return float("nan") if total == 0 else len(self.identified) / total

    @property
    def localisation_mean(self) -> float:
        return float(np.mean(list(self.distances.values()))) if self.distances else float("nan")

    @property
    def localisation_std(self) -> float:
        """Population standard deviation (ddof = 0) of the localisation distances."""
        return float(np.std(list(self.distances.values()))) if self.distances else float("nan")


def _coordinates(centroids: Mapping[str, Sequence[float]], name: str) -> tuple[list[str], npt.NDArray[np.float64]]:
    labels = list(centroids)
    if not labels:
        return labels, np.zeros((0, 3))
    points = np.asarray([centroids[label] for label in labels], dtype=np.float64).reshape(len(labels), -1)
    if points.shape[1] not in (2, 3) or not np.all(np.isfinite(points)):
        raise ValueError(f"{name}: expected finite (x, y) or (x, y, z) coordinates in mm per label")
    return labels, points


def identification(
    reference_centroids: Mapping[str, Sequence[float]],
    predicted_centroids: Mapping[str, Sequence[float]],
    *,
    max_distance_mm: float = 20.0,
) -> Identification:
    """Match `{label: (x, y[, z])}` centroids (mm).

    A predicted vertebra k is identified when the ground-truth vertebra nearest to it, searched among ALL
    ground-truth vertebrae (not only those the prediction names, unlike the VerSe script), is k itself and that
    distance is at most `max_distance_mm`. A tie between k and another vertebra at the same distance is not an
    identification. Identification rate = identified / ground-truth vertebrae; missing predictions are misses;
    extra labels are reported as false detections. Localisation distance: over labels present in both.
    """
    reference_labels, reference_points = _coordinates(reference_centroids, "reference_centroids")
    predicted_labels, predicted_points = _coordinates(predicted_centroids, "predicted_centroids")
    if reference_labels and predicted_labels and reference_points.shape[1] != predicted_points.shape[1]:
        raise ValueError("predicted_centroids: dimension differs from reference_centroids")
    reference_index = {label: index for index, label in enumerate(reference_labels)}
    identified, distances = set(), {}
    for label, point in zip(predicted_labels, predicted_points):
        if label not in reference_index:
            continue
        to_reference = np.linalg.norm(reference_points - point, axis=1)
        own = to_reference[reference_index[label]]
        distances[label] = float(own)
        others = np.delete(to_reference, reference_index[label])
        if own <= max_distance_mm and not np.any(others <= own):
            identified.add(label)
    return Identification(
        identified=tuple(label for label in reference_labels if label in identified),
        missed=tuple(label for label in reference_labels if label not in identified),
        extra=tuple(label for label in predicted_labels if label not in reference_index),
        distances={label: distances[label] for label in reference_labels if label in distances},
    )
