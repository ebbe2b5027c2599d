"""Surface distances per label, computed once and shared by ASSD, MASD, HD95 and the directed averages.

Definitions (../shared/reference/metrics.md, MedPy 0.5.2 conventions):

- Surface of a mask X: S_X = X minus its erosion by the face-connected structuring element (6 neighbours in 3D,
  4 in 2D); voxels on the array border count as surface (outside the array is background).
- d(S_X -> S_Y): for every voxel of S_X, the exact Euclidean distance to the nearest voxel of S_Y, with the voxel
  spacing (mm), or in voxels (unit spacing).
- ASSD = (sum d(S_X -> S_Y) + sum d(S_Y -> S_X)) / (|S_X| + |S_Y|), pooled as MedPy 0.5.2 `assd`.
- MASD = ½(mean d(S_X -> S_Y) + mean d(S_Y -> S_X)) (MetricsReloaded "masd").
- HD95 = 95th percentile (linear interpolation) of the pooled distances d(S_X -> S_Y) ∪ d(S_Y -> S_X), as
  MedPy 0.5.2 `hd95`.
- Both masks empty: every distance metric is 0. Exactly one empty: not a number (NaN); task evaluators then apply
  their documented aggregation rule.

Work is done per label on the union bounding box of the two masks (all labels' boxes found in one pass). The
directed distances are what a Euclidean distance map of one surface reads at the other surface's voxels; they are
computed as exact nearest-neighbour distances between the two surface point sets (spacing-scaled voxel centres)
with `scipy.spatial.cKDTree`, once per label and direction. benchmarks/evaluators_surface.py measures this against
reading distance maps from the `edt` package and from `scipy.ndimage.distance_transform_edt` (same values, slower,
because a map covers the whole box while surfaces are a thin shell of it).

The same pass counts the voxels of both masks and of their intersection, so Dice and Concurrency come with the
surface distances (`SurfaceDistances.dice`, `.concurrency`) without a second pass over the volume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

from evaluators.metrics.labels import LabelCounts, LabelCrop, label_crops
from evaluators.metrics.overlap import concurrency_from_counts, dice_from_counts

UNITS = ("mm", "voxels")


def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """The mask minus its face-connected erosion; voxels on the array border stay surface."""
    padded = np.pad(mask, 1)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    interior = mask.copy()
    for axis in range(mask.ndim):
        for shift in (0, 2):
            neighbour = list(inner)
            neighbour[axis] = slice(shift, shift + mask.shape[axis])
            interior &= padded[tuple(neighbour)]
    surface: np.ndarray = mask & ~interior
    return surface


def _nearest(source: np.ndarray, target: np.ndarray, spacing: np.ndarray, target_tree: cKDTree) -> np.ndarray:
    """Distance from every True voxel of `source` (np.argwhere order) to the nearest True voxel of `target`;
    voxels on both surfaces are 0 without a search."""
    distances = np.zeros(np.count_nonzero(source))
    away = ~target[source]
    distances[away] = target_tree.query(np.argwhere(source & ~target) * spacing)[0]
    return distances


def _tree(surface: np.ndarray, spacing: np.ndarray) -> cKDTree:
    return cKDTree(np.argwhere(surface) * spacing, leafsize=32, balanced_tree=False, compact_nodes=False)


def directed_distances(
    reference_surface: np.ndarray, prediction_surface: np.ndarray, spacing: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """(d(S_ref -> S_pred), d(S_pred -> S_ref)): for every voxel of one surface (in np.argwhere order), the exact
    Euclidean distance to the nearest voxel of the other, with `spacing` per array axis."""
    scale = np.asarray(spacing, dtype=np.float64)
    return (
        _nearest(reference_surface, prediction_surface, scale, _tree(prediction_surface, scale)),
        _nearest(prediction_surface, reference_surface, scale, _tree(reference_surface, scale)),
    )


@dataclass(frozen=True)
class SurfaceDistances:
    """Directed surface distances of one label: `reference_to_prediction` holds, for each reference surface voxel,
    the distance to the nearest predicted surface voxel; `prediction_to_reference` the converse. `None` for both
    when exactly one mask is empty; empty arrays when both are. `counts`: the voxel counts behind Dice."""

    reference_to_prediction: np.ndarray | None
    prediction_to_reference: np.ndarray | None
    counts: LabelCounts

    @property
    def dice(self) -> float:
        """Dice of the two masks (see `evaluators.metrics.dice`)."""
        return dice_from_counts(self.counts)

    @property
    def concurrency(self) -> float:
        """Concurrency of the two masks (see `evaluators.metrics.concurrency`)."""
        return concurrency_from_counts(self.counts)

    @property
    def defined(self) -> bool:
        return self.reference_to_prediction is not None

    @property
    def both_empty(self) -> bool:
        return self.reference_to_prediction is not None and self.reference_to_prediction.size == 0

    def _metric(self, compute: Callable[[np.ndarray, np.ndarray], Any]) -> float:
        """`compute(d(ref->pred), d(pred->ref))` as a float; NaN when undefined, 0 when both masks are empty."""
        if self.reference_to_prediction is None or self.prediction_to_reference is None:
            return float("nan")
        if self.both_empty:
            return 0.0
        return float(compute(self.reference_to_prediction, self.prediction_to_reference))

    @property
    def mean_reference_to_prediction(self) -> float:
        """mean d(S_ref -> S_pred)."""
        return self._metric(lambda to_prediction, _: to_prediction.mean())

    @property
    def mean_prediction_to_reference(self) -> float:
        """mean d(S_pred -> S_ref)."""
        return self._metric(lambda _, to_reference: to_reference.mean())

    @property
    def assd(self) -> float:
        """Pooled: (Σ d(ref->pred) + Σ d(pred->ref)) / (|S_ref| + |S_pred|)."""
        return self._metric(
            lambda to_prediction, to_reference: (to_prediction.sum() + to_reference.sum())
            / (to_prediction.size + to_reference.size)
        )

    @property
    def masd(self) -> float:
        """½(mean d(ref->pred) + mean d(pred->ref))."""
        return self._metric(lambda to_prediction, to_reference: 0.5 * (to_prediction.mean() + to_reference.mean()))

    @property
    def hd95(self) -> float:
        """95th percentile (linear) of the pooled directed distances."""
        return self._metric(
            lambda to_prediction, to_reference: np.percentile(np.concatenate([to_prediction, to_reference]), 95)
        )


def _spacing(spacing: npt.ArrayLike, ndim: int, units: str) -> tuple[float, ...]:
    if units not in UNITS:
        raise ValueError(f"units: expected one of {UNITS}, got {units!r}")
    if units == "voxels":
        return (1.0,) * ndim
    values = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (ndim,))
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"spacing: expected {ndim} positive numbers (mm per array axis), got {spacing!r}")
    return tuple(float(value) for value in values)


def _label_distances(crop: LabelCrop, spacing: tuple[float, ...]) -> SurfaceDistances:
    counts = crop.counts
    if counts.reference == 0 and counts.prediction == 0:
        return SurfaceDistances(np.zeros(0), np.zeros(0), counts)
    if counts.reference == 0 or counts.prediction == 0:
        return SurfaceDistances(None, None, counts)
    to_prediction, to_reference = directed_distances(
        surface_voxels(crop.reference), surface_voxels(crop.prediction), spacing
    )
    return SurfaceDistances(to_prediction, to_reference, counts)


@overload
def surface_distances(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike, labels: None = None,
    units: str = "mm",
) -> SurfaceDistances: ...
@overload
def surface_distances(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike, labels: Iterable[int],
    units: str = "mm",
) -> dict[int, SurfaceDistances]: ...
def surface_distances(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike,
    labels: Iterable[int] | None = None, units: str = "mm",
) -> SurfaceDistances | dict[int, SurfaceDistances]:
    """`SurfaceDistances` of the foreground (labels=None, non-zero voxels) or {label: SurfaceDistances}.

    `spacing`: voxel size per array axis (numpy order) in mm, one number or one per axis; ignored when
    `units="voxels"` (distances then count voxel steps).
    """
    scale = _spacing(spacing, np.ndim(reference), units)
    result = {crop.label: _label_distances(crop, scale) for crop in label_crops(reference, prediction, labels=labels)}
    if labels is None:
        return result[None]
    return {label: value for label, value in result.items() if label is not None}


def _derived(
    name: str, reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike,
    labels: Iterable[int] | None, units: str,
) -> float | dict[int, float]:
    if labels is None:
        distances = surface_distances(reference, prediction, spacing=spacing, units=units)
        return float(getattr(distances, name))
    per_label = surface_distances(reference, prediction, spacing=spacing, labels=labels, units=units)
    return {label: float(getattr(value, name)) for label, value in per_label.items()}


def assd(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike,
    labels: Iterable[int] | None = None, units: str = "mm",
) -> float | dict[int, float]:
    """Average symmetric surface distance (pooled, MedPy 0.5.2); see the module docstring for rules and units."""
    return _derived("assd", reference, prediction, spacing=spacing, labels=labels, units=units)


def masd(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike,
    labels: Iterable[int] | None = None, units: str = "mm",
) -> float | dict[int, float]:
    """Mean of the two directed average surface distances; see the module docstring."""
    return _derived("masd", reference, prediction, spacing=spacing, labels=labels, units=units)


def hd95(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, spacing: npt.ArrayLike,
    labels: Iterable[int] | None = None, units: str = "mm",
) -> float | dict[int, float]:
    """95th-percentile Hausdorff distance over the pooled directed distances (MedPy 0.5.2)."""
    return _derived("hd95", reference, prediction, spacing=spacing, labels=labels, units=units)
