"""The vertebra-labelling radiograph viewer: the image with the reference centroids (green rings) and the predicted
ones (a cross coloured by the verdict: identified, missed, extra), and a table of the same per vertebra.

The verdict is the evaluator's own (`evaluators.metrics.identification`, the nearest-vertebra rule within 20 mm),
so the picture and the identification rate on the page can never disagree. Server-rendered PNG (Pillow), never
written to disk (so nothing of a hidden phase lingers), drawn again per request; the views check
`can_see_ground_truth_plots` before this module reads anything.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .case_predictions import case_prediction
from .models import Submission

LABELLING_TASKS = ("vertebra-labelling-xr",)
#: Longest side of the picture in pixels.
DISPLAY_PIXELS = 640
TRUTH_COLOUR = (0, 158, 115)
VERDICT_COLOURS = {"identified": (86, 180, 233), "missed": (213, 94, 0), "extra": (240, 228, 66)}


def viewer_available(submission: Submission) -> bool:
    evaluation = getattr(submission, "evaluation", None)
    return (
        submission.phase.task in LABELLING_TASKS
        and bool(submission.predictions_file)
        and evaluation is not None
        and bool(evaluation.case_metrics)
    )


@dataclass(frozen=True)
class Row:
    vertebra: str
    truth: tuple[float, float] | None  # mm
    predicted: tuple[float, float] | None  # mm
    distance: float | None  # mm, where both exist
    verdict: str  # identified | missed | extra

    @property
    def reason(self) -> str:
        if self.verdict == "identified":
            return "nearest reference vertebra, within 20 mm"
        if self.verdict == "extra":
            return "not in the reference (false detection)"
        if self.predicted is None:
            return "not predicted"
        if self.distance is not None and self.distance > 20.0:
            return "more than 20 mm from its reference"
        return "nearer to another reference vertebra"


@dataclass(frozen=True)
class CaseView:
    case_id: str
    rows: list[Row]
    identified: int
    total: int


def _sources(submission: Submission, case_id: str) -> tuple[dict, dict]:
    from evaluators.formats import load_ground_truth

    if case_id not in submission.evaluation.case_metrics:
        raise KeyError(case_id)
    truth = load_ground_truth(submission.phase.task, submission.phase.dataset.root)[case_id]["centroids"]
    predicted = case_prediction(submission, case_id, lambda prediction: prediction["centroids"])
    return truth, predicted


def case_view(submission: Submission, case_id: str) -> CaseView:
    """The per-vertebra verdicts. KeyError when the case is not one the submission was scored on."""
    from evaluators.layout import VERTEBRA_LABELS
    from evaluators.metrics.identification import identification

    truth, predicted = _sources(submission, case_id)
    outcome = identification(truth, predicted)
    rows = []
    for name in sorted(set(truth) | set(predicted), key=lambda n: VERTEBRA_LABELS.get(n, 99)):
        verdict = "identified" if name in outcome.identified else "extra" if name in outcome.extra else "missed"
        rows.append(
            Row(
                vertebra=name,
                truth=tuple(truth[name]) if name in truth else None,
                predicted=tuple(predicted[name]) if name in predicted else None,
                distance=outcome.distances.get(name),
                verdict=verdict,
            )
        )
    return CaseView(case_id=case_id, rows=rows, identified=len(outcome.identified), total=len(truth))


def display_size(columns: int, rows: int, spacing) -> tuple[int, int]:
    """(width, height) of the picture: the image's physical aspect ratio, its longest side DISPLAY_PIXELS."""
    width, height = columns * spacing[0], rows * spacing[1]
    scale = DISPLAY_PIXELS / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def render(submission: Submission, view: CaseView) -> bytes:
    """The PNG: the radiograph (1st-99th percentile window), a green ring per reference centroid with its name, a
    cross per predicted centroid in its verdict's colour, and a line from each prediction to its reference."""
    import SimpleITK as sitk
    from PIL import Image, ImageDraw

    from evaluators.layout import case_input_dir

    image = sitk.ReadImage(str(case_input_dir(submission.phase.dataset.root, view.case_id) / "image.nii.gz"))
    pixels = sitk.GetArrayFromImage(image).astype(np.float64)
    low, high = np.percentile(pixels, [1, 99])
    grey = np.clip((pixels - low) / max(high - low, 1e-6), 0, 1)
    size = display_size(pixels.shape[1], pixels.shape[0], image.GetSpacing())
    scale = (size[0] / pixels.shape[1], size[1] / pixels.shape[0])
    picture = Image.fromarray((grey * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR).convert("RGB")
    draw = ImageDraw.Draw(picture)

    def at(point) -> tuple[float, float]:
        column, row = image.TransformPhysicalPointToContinuousIndex([float(v) for v in point])
        return (column + 0.5) * scale[0], (row + 0.5) * scale[1]

    for row in view.rows:
        colour = VERDICT_COLOURS[row.verdict]
        if row.truth is not None and row.predicted is not None:
            draw.line([at(row.truth), at(row.predicted)], fill=colour, width=1)
        if row.truth is not None:
            x, y = at(row.truth)
            draw.ellipse([x - 5, y - 5, x + 5, y + 5], outline=TRUTH_COLOUR, width=2)
            draw.text(
                (x - 9, y), row.vertebra, fill=(255, 255, 255), anchor="rm", stroke_width=2, stroke_fill=(0, 0, 0)
            )
        if row.predicted is not None:
            x, y = at(row.predicted)
            draw.line([(x - 5, y - 5), (x + 5, y + 5)], fill=colour, width=2)
            draw.line([(x - 5, y + 5), (x + 5, y - 5)], fill=colour, width=2)
            if row.truth is None:
                draw.text((x + 9, y), row.vertebra, fill=colour, anchor="lm", stroke_width=2, stroke_fill=(0, 0, 0))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
