"""Volume-overlap metrics per label: Dice and Concurrency."""

from __future__ import annotations

from collections.abc import Iterable
from typing import overload

import numpy.typing as npt

from evaluators.metrics.labels import LabelCounts, label_counts


def dice_from_counts(counts: LabelCounts) -> float:
    """Dice from voxel counts (see `dice`)."""
    total = counts.reference + counts.prediction
    return 1.0 if total == 0 else 2.0 * counts.intersection / total


def concurrency_from_counts(counts: LabelCounts) -> float:
    """Concurrency from voxel counts (see `concurrency`)."""
    if counts.reference == 0 and counts.prediction == 0:
        return 1.0
    if counts.reference == 0 or counts.prediction == 0:
        return 0.0
    return 0.5 * (counts.intersection / counts.reference + counts.intersection / counts.prediction)


@overload
def dice(reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: None = None) -> float: ...
@overload
def dice(reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int]) -> dict[int, float]: ...
def dice(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int] | None = None
) -> float | dict[int, float]:
    """Dice = 2|X ∩ Y| / (|X| + |Y|) per label, X the reference and Y the predicted voxels of that label.

    Both empty: 1.0 (nothing to find, nothing found). One empty: 0.0. With `labels=None` the arrays are treated as
    binary (non-zero = foreground) and a float is returned; with a sequence of labels, a {label: float} dict.
    """
    if labels is None:
        return dice_from_counts(label_counts(reference, prediction))
    return {
        label: dice_from_counts(value) for label, value in label_counts(reference, prediction, labels=labels).items()
    }


@overload
def concurrency(reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: None = None) -> float: ...
@overload
def concurrency(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int]
) -> dict[int, float]: ...
def concurrency(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int] | None = None
) -> float | dict[int, float]:
    """Concurrency = ½(|X ∩ Y| / |X| + |X ∩ Y| / |Y|) per label (mean of recall and precision).

    Both empty: 1.0. One empty: 0.0. `labels` as in `dice`.
    """
    if labels is None:
        return concurrency_from_counts(label_counts(reference, prediction))
    counts = label_counts(reference, prediction, labels=labels)
    return {label: concurrency_from_counts(value) for label, value in counts.items()}
