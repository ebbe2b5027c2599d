"""Per-label crops shared by the overlap and surface metrics.

Every per-label computation works on the union bounding box of the label in the reference and the prediction
(found for all labels in one pass with `scipy.ndimage.find_objects`), so a volume with 25 labels is never copied
25 times at full size and the work per label scales with the label's extent, not the image's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
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
    reference: np.ndarray
    prediction: np.ndarray

    @property
    def counts(self) -> LabelCounts:
        return LabelCounts(
            reference=int(np.count_nonzero(self.reference)),
            prediction=int(np.count_nonzero(self.prediction)),
            intersection=int(np.count_nonzero(self.reference & self.prediction)),
        )


def check_pair(reference, prediction) -> tuple[np.ndarray, np.ndarray]:
    reference = np.asarray(reference)
    prediction = np.asarray(prediction)
    if reference.shape != prediction.shape:
        raise ValueError(f"prediction: shape {prediction.shape} differs from reference shape {reference.shape}")
    if reference.ndim not in (2, 3):
        raise ValueError(f"reference: expected a 2D or 3D array, got {reference.ndim} dimensions")
    return reference, prediction


def _union_box(*boxes) -> tuple[slice, ...] | None:
    boxes = [box for box in boxes if box is not None]
    if not boxes:
        return None
    return tuple(
        slice(min(box[axis].start for box in boxes), max(box[axis].stop for box in boxes))
        for axis in range(len(boxes[0]))
    )


def _boxes(array: np.ndarray, max_label: int) -> list:
    if array.dtype == bool:
        array = array.view(np.uint8)
    elif not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"label maps must hold integers, got dtype {array.dtype}")
    boxes = ndimage.find_objects(array, max_label=max_label)
    return boxes + [None] * (max_label - len(boxes))


def _check_labels(labels) -> list[int]:
    labels = [int(label) for label in labels]
    if not labels or min(labels) < 1:
        raise ValueError(f"labels: expected positive integer labels, got {labels}")
    return labels


def label_crops(reference, prediction, *, labels=None) -> Iterator[LabelCrop]:
    """Yield one `LabelCrop` per label (or one for the binary foreground, non-zero voxels, when labels is None).

    A label absent from both arrays yields empty (0-sized) masks.
    """
    reference, prediction = check_pair(reference, prediction)
    if labels is None:
        reference = reference != 0
        prediction = prediction != 0
        wanted = [None]
        max_label = 1
    else:
        wanted = _check_labels(labels)
        max_label = max(wanted)
    reference_boxes = _boxes(reference, max_label)
    prediction_boxes = _boxes(prediction, max_label)
    empty = np.zeros((0,) * reference.ndim, dtype=bool)
    for label in wanted:
        index = 0 if label is None else label - 1
        box = _union_box(reference_boxes[index], prediction_boxes[index])
        if box is None:
            yield LabelCrop(label=label, reference=empty, prediction=empty)
            continue
        value = True if label is None else label
        yield LabelCrop(label=label, reference=reference[box] == value, prediction=prediction[box] == value)


def label_counts(reference, prediction, *, labels=None):
    """`LabelCounts` of the foreground (labels=None) or {label: LabelCounts}."""
    counts = {crop.label: crop.counts for crop in label_crops(reference, prediction, labels=labels)}
    return counts[None] if labels is None else counts
