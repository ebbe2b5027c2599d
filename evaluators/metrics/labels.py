"""Per-label crops shared by the overlap and surface metrics.

Every per-label computation works on the union bounding box of the label in the reference and the prediction
(found for all labels in one pass with `scipy.ndimage.find_objects`), so a volume with 25 labels is never copied
25 times at full size and the work per label scales with the label's extent, not the image's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt
from scipy import ndimage


@dataclass(frozen=True)
class LabelCounts:
    reference: int
    prediction: int
    intersection: int


@dataclass(frozen=True)
class LabelCrop:
    """The boolean masks of one label inside the union bounding box of its reference and predicted voxels."""

    label: int | None
    reference: npt.NDArray[np.bool_]
    prediction: npt.NDArray[np.bool_]

    @property
    def counts(self) -> LabelCounts:
        return LabelCounts(
            reference=int(np.count_nonzero(self.reference)),
            prediction=int(np.count_nonzero(self.prediction)),
            intersection=int(np.count_nonzero(self.reference & self.prediction)),
        )


def check_pair(
    reference: npt.ArrayLike, prediction: npt.ArrayLike
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    reference_array, prediction_array = np.asarray(reference), np.asarray(prediction)
    if reference_array.shape != prediction_array.shape:
        raise ValueError(
            f"prediction: shape {prediction_array.shape} differs from reference shape {reference_array.shape}"
        )
    if reference_array.ndim not in (2, 3):
        raise ValueError(f"reference: expected a 2D or 3D array, got {reference_array.ndim} dimensions")
    return reference_array, prediction_array


def _union_box(*candidates: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    boxes = [box for box in candidates if box is not None]
    if not boxes:
        return None
    return tuple(
        slice(min(box[axis].start for box in boxes), max(box[axis].stop for box in boxes))
        for axis in range(len(boxes[0]))
    )


def _boxes(array: npt.NDArray[Any], max_label: int) -> list[tuple[slice, ...] | None]:
    if array.dtype == bool:
        array = array.view(np.uint8)
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"label maps must hold integers, got dtype {array.dtype}")
    boxes: list[tuple[slice, ...] | None] = list(ndimage.find_objects(array, max_label=max_label))
    return boxes + [None] * (max_label - len(boxes))


def _check_labels(labels: Iterable[int]) -> list[int]:
    checked = [int(label) for label in labels]
    if not checked or min(checked) < 1:
        raise ValueError(f"labels: expected positive integer labels, got {checked}")
    return checked


def label_crops(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int] | None = None
) -> Iterator[LabelCrop]:
    """Yield one `LabelCrop` per label (or one for the binary foreground, non-zero voxels, when labels is None).

    A label absent from both arrays yields empty (0-sized) masks.
    """
    reference_array, prediction_array = check_pair(reference, prediction)
    wanted: list[int | None]
    if labels is None:
        reference_array = reference_array != 0
        prediction_array = prediction_array != 0
        wanted = [None]
        max_label = 1
    else:
        checked = _check_labels(labels)
        wanted, max_label = list(checked), max(checked)
    reference_boxes = _boxes(reference_array, max_label)
    prediction_boxes = _boxes(prediction_array, max_label)
    empty = np.zeros((0,) * reference_array.ndim, dtype=bool)
    for label in wanted:
        index = 0 if label is None else label - 1
        box = _union_box(reference_boxes[index], prediction_boxes[index])
        if box is None:
            yield LabelCrop(label=label, reference=empty, prediction=empty)
            continue
        value = True if label is None else label
        yield LabelCrop(
            label=label, reference=reference_array[box] == value, prediction=prediction_array[box] == value
        )


@overload
def label_counts(reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: None = None) -> LabelCounts: ...
@overload
def label_counts(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int]
) -> dict[int, LabelCounts]: ...
def label_counts(
    reference: npt.ArrayLike, prediction: npt.ArrayLike, *, labels: Iterable[int] | None = None
) -> LabelCounts | dict[int, LabelCounts]:
    """`LabelCounts` of the foreground (labels=None) or {label: LabelCounts}."""
    counts = {crop.label: crop.counts for crop in label_crops(reference, prediction, labels=labels)}
    if labels is None:
        return counts[None]
    return {label: value for label, value in counts.items() if label is not None}
