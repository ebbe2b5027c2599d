"""The AASCE case viewer: one radiograph with the ground-truth landmarks and Cobb lines drawn, and the prediction's
Cobb lines where the submission gave landmarks (a container's `landmarks.json`; a CSV has angles only).

Server-rendered PNG (matplotlib, cached like the other figures in `plots`) next to a table of the numbers it draws, so
the page needs no browser viewer and reads without JavaScript. Who may open it is the figures' rule
(`spinebench.access.can_see_ground_truth_plots`): organizers, and anyone else only on phases whose labels are
public — never a hidden test case. The views enforce it; this module only reads and draws.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .models import Submission
from .plots import _cached, _digest
from .uploads import predictions_location

VIEWER_TASKS = ("aasce-cobb",)
VERTEBRAE = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
ANGLES = ("PT", "MT", "TL")
COLOURS = ("tab:orange", "tab:cyan", "tab:pink")
#: Part of the cached file's name: a change of the drawing gets new files, never a stale picture.
DRAWING = "three-panels-2"


def viewer_available(submission: Submission) -> bool:
    """A viewer exists for this submission's cases (whoever looks; permission is the views' business)."""
    evaluation = getattr(submission, "evaluation", None)
    return (
        submission.phase.task in VIEWER_TASKS
        and bool(submission.predictions_file)
        and evaluation is not None
        and bool(evaluation.case_metrics)
        and _landmarks_file(submission.phase.dataset.root).is_file()  # a dataset of angles alone has nothing to draw
    )


def _landmarks_file(dataset_root: Path) -> Path:
    from evaluators.layout import ground_truth_dir

    return ground_truth_dir(dataset_root) / "landmarks.csv"


@dataclass(frozen=True)
class CaseView:
    case_id: str
    rows: list[tuple[str, float, float, str, str | None]]  # angle, truth, predicted, truth ends, predicted ends
    has_predicted_landmarks: bool


def _truth_landmarks(dataset_root: Path, case_id: str) -> tuple[np.ndarray, float]:
    """(68, 2) landmarks in pixels and the image height from ground_truth/landmarks.csv (docs/formats.md)."""
    path = _landmarks_file(dataset_root)
    if not path.is_file():
        raise KeyError(case_id)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["case_id"] == case_id:
                points = [[float(row[f"x{i}"]), float(row[f"y{i}"])] for i in range(1, 69)]
                return np.array(points), float(row["image_height"])
    raise KeyError(case_id)


def _predicted(submission: Submission, case_id: str) -> dict:
    from evaluators.formats import load_predictions

    scored = list(submission.evaluation.case_metrics)  # the reader checks the file covers exactly these
    with predictions_location(submission) as path:
        return load_predictions(submission.phase.task, path, case_ids=scored)[case_id]


def _ends(pair) -> str:
    return f"{VERTEBRAE[pair[0]]}–{VERTEBRAE[pair[1]]}"


def case_view(submission: Submission, case_id: str) -> CaseView:
    """The numbers the figure draws. KeyError when the case is not one the submission was scored on."""
    from evaluators.cobb import cobb_angles, cobb_end_vertebrae

    if case_id not in submission.evaluation.case_metrics:
        raise KeyError(case_id)
    landmarks, height = _truth_landmarks(submission.phase.dataset.root, case_id)
    truth, truth_pairs = cobb_angles(landmarks, height), cobb_end_vertebrae(landmarks, height)
    predicted = _predicted(submission, case_id)
    predicted_pairs = (
        cobb_end_vertebrae(predicted["landmarks"], predicted["image_height"]) if "landmarks" in predicted else None
    )
    rows = [
        (
            name,
            float(truth[k]),
            float(predicted["angles"][k]),
            _ends(truth_pairs[k]),
            _ends(predicted_pairs[k]) if predicted_pairs else None,
        )
        for k, name in enumerate(ANGLES)
    ]
    return CaseView(case_id=case_id, rows=rows, has_predicted_landmarks=predicted_pairs is not None)


def _cobb_line(axes, landmarks: np.ndarray, vertebra: int, *, length: float, **style) -> None:
    """A line through the vertebra's centre along its direction (mean right corners - mean left corners)."""
    corners = landmarks[4 * vertebra : 4 * vertebra + 4]  # top-left, top-right, bottom-left, bottom-right
    centre = corners.mean(axis=0)
    direction = corners[[1, 3]].mean(axis=0) - corners[[0, 2]].mean(axis=0)
    direction = direction / np.linalg.norm(direction)
    ends = np.array([centre - length * direction, centre + length * direction])
    axes.plot(ends[:, 0], ends[:, 1], **style)


def case_image(submission: Submission, case_id: str) -> str:
    """The cached PNG of one case (drawn on first request)."""
    view = case_view(submission, case_id)
    digest = _digest(DRAWING, submission.predictions_file.name, submission.phase.dataset_id, view.rows)
    return _cached(f"submission-{submission.pk}/case-{case_id}-{digest}.png", lambda out: _draw(out, submission, view))


def _draw(out: Path, submission: Submission, view: CaseView) -> None:
    """One panel per angle (PT, MT, TL: end vertebrae may be shared, so one panel each keeps their lines apart):
    the radiograph, the reference landmarks, the reference Cobb lines solid and the predicted ones dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    from evaluators.cobb import cobb_end_vertebrae
    from evaluators.layout import case_input_dir

    root = submission.phase.dataset.root
    image = np.asarray(Image.open(case_input_dir(root, view.case_id) / "image.png").convert("L"))
    landmarks, height = _truth_landmarks(root, view.case_id)
    truth_pairs = cobb_end_vertebrae(landmarks, height)
    predicted_points = predicted_pairs = None
    if view.has_predicted_landmarks:
        predicted = _predicted(submission, view.case_id)
        predicted_points = np.asarray(predicted["landmarks"])
        predicted_pairs = cobb_end_vertebrae(predicted_points, predicted["image_height"])
    rows, columns = image.shape
    panel_height = 4.6
    figure, panels = plt.subplots(1, 3, figsize=(3 * panel_height * columns / rows + 0.6, panel_height + 0.7))
    length = 0.35 * columns
    for k, (axes, colour) in enumerate(zip(panels, COLOURS)):
        name, truth, guess, truth_ends, _ = view.rows[k]
        axes.imshow(image, cmap="gray")
        axes.scatter(landmarks[:, 0], landmarks[:, 1], s=3, c="tab:green")
        for vertebra in truth_pairs[k]:
            _cobb_line(axes, landmarks, vertebra, length=length, color=colour, linewidth=1.6)
        if predicted_pairs is not None and predicted_points is not None:
            for vertebra in predicted_pairs[k]:
                _cobb_line(
                    axes, predicted_points, vertebra, length=length, color="white", linewidth=1.2, linestyle="--"
                )
        axes.set_xlim(0, columns)
        axes.set_ylim(rows, 0)
        axes.set(xticks=[], yticks=[])
        axes.set_title(f"{name} {truth_ends}\nreference {truth:.1f}°, predicted {guess:.1f}°", fontsize=8)
    figure.suptitle(
        f"Submission #{submission.pk}: {view.case_id} (green: reference landmarks; solid: reference Cobb lines"
        + ("; dashed: predicted)" if predicted_pairs is not None else ")"),
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0, 1, 0.95))
    figure.savefig(out, dpi=120)
    plt.close(figure)
