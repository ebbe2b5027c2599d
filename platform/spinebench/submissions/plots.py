"""Figures of evaluations, rendered server-side to PNG with evaluators.plots (matplotlib, Agg backend) and cached
in the default storage under plots/ (spinebench.uploads.stored_files: the local disk or an object store). A cached
file is named by a digest of everything it is drawn from, so a re-scored
submission or a changed leaderboard gets a new file and a stale one is never served.

Who may see which figure is decided by the views (spinebench.access); this module only draws.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from spinebench.datasets.models import Dataset
from spinebench.uploads.stored_files import stored_once

from .models import Evaluation, Submission
from .tasks import predictions_location

#: Figure kinds of one submission: "roc" (fracture-ct, from the stored curves), "bland-altman" (aasce-cobb,
#: predicted against ground-truth angles) and "overlay" (segmentation tasks: one case's slice with the reference and
#: predicted contours).
ROC, BLAND_ALTMAN, OVERLAY = "roc", "bland-altman", "overlay"
SEGMENTATION_TASKS = ("metastatic-body-ct", "lumbosacral-ct")
#: Leaderboard ROC overlay: at most this many of the best-ranked submissions.
OVERLAY_TOP = 5
ROC_LEVELS = ("patient", "vertebra")


def submission_plot_kinds(submission: Submission) -> list[str]:
    """The figures that exist for this submission (whoever looks)."""
    evaluation = getattr(submission, "evaluation", None)
    if evaluation is None:
        return []
    kinds = []
    if evaluation.curves:
        kinds.append(ROC)
    if submission.phase.task == "aasce-cobb" and submission.predictions_file:
        kinds.append(BLAND_ALTMAN)
    if submission.phase.task in SEGMENTATION_TASKS and submission.predictions_file:
        kinds.append(OVERLAY)
    return kinds


def submission_plot(submission: Submission, kind: str) -> str:
    """Stored name of the cached PNG of `kind` for the submission (drawn on first request)."""
    evaluation = submission.evaluation
    if kind == ROC:
        digest = _digest(evaluation.curves, _roc_legend(evaluation))
        return _cached(f"submission-{submission.pk}/roc-{digest}.png", lambda out: _draw_roc(out, submission))
    if kind == BLAND_ALTMAN:
        digest = _digest(submission.predictions_file.name, submission.phase.dataset_id, evaluation.aggregates)
        return _cached(
            f"submission-{submission.pk}/bland-altman-{digest}.png", lambda out: _draw_bland_altman(out, submission)
        )
    if kind == OVERLAY:
        digest = _digest(submission.predictions_file.name, submission.phase.dataset_id, evaluation.aggregates)
        return _cached(f"submission-{submission.pk}/overlay-{digest}.png", lambda out: _draw_overlay(out, submission))
    raise ValueError(f"unknown plot kind {kind!r}; expected one of {ROC!r}, {BLAND_ALTMAN!r}, {OVERLAY!r}")


def overlay_rows(rows) -> list:
    """Leaderboard rows (spinebench.leaderboards.services.Row) whose submissions have ROC curves: the best
    OVERLAY_TOP of them."""
    return [row for row in rows if getattr(row.submission, "evaluation", None) and row.submission.evaluation.curves][
        :OVERLAY_TOP
    ]


def phase_roc_overlay(phase, rows) -> str:
    """Patient-level ROC curves of the `overlay_rows(rows)` submissions in one figure (cached)."""
    chosen = overlay_rows(rows)
    if not chosen:
        raise ValueError(f"phase {phase}: no ranked submission has ROC curves")
    curves = {}
    for row in chosen:
        evaluation = row.submission.evaluation
        level = evaluation.curves.get("patient") or next(iter(evaluation.curves.values()))
        legend = _roc_legend(evaluation).get("patient", {})
        curves[f"#{row.rank} {row.participant}"] = {"fpr": level["fpr"], "tpr": level["tpr"], **legend}
    digest = _digest(curves)

    def draw(out: Path) -> None:
        from evaluators.plots import plot_roc

        plot_roc(out, curves=curves, title=f"{phase.title}: patient-level ROC of the top {len(curves)}")

    return _cached(f"phase-{phase.pk}/roc-{digest}.png", draw)


def _roc_legend(evaluation: Evaluation) -> dict:
    """{level: {"auc": .., "ci": (low, high)}} from the aggregates, for the legend."""
    aggregates = evaluation.aggregates
    legend = {}
    for level in ROC_LEVELS:
        auc = aggregates.get(f"auc_{level}")
        low, high = aggregates.get(f"auc_{level}_ci_low"), aggregates.get(f"auc_{level}_ci_high")
        legend[level] = {"auc": auc, "ci": (low, high) if low is not None and high is not None else None}
    return legend


def _draw_roc(out: Path, submission: Submission) -> None:
    from evaluators.plots import plot_roc

    evaluation = submission.evaluation
    legend = _roc_legend(evaluation)
    curves = {
        f"{level} level": {"fpr": curve["fpr"], "tpr": curve["tpr"], **legend.get(level, {})}
        for level, curve in evaluation.curves.items()
    }
    plot_roc(out, curves=curves, title=f"Submission #{submission.pk}: ROC (AUC with 95% bootstrap CI)")


def _scored_dataset(submission: Submission) -> Dataset:
    """The dataset the submission was scored against (a scored submission's phase always has one)."""
    dataset = submission.phase.dataset
    if dataset is None:
        raise ValueError(f"phase {submission.phase} has no dataset to draw ground truth from")
    return dataset


def _draw_bland_altman(out: Path, submission: Submission) -> None:
    import numpy as np

    from evaluators.formats import load_ground_truth, load_predictions
    from evaluators.plots import plot_bland_altman

    truth = load_ground_truth("aasce-cobb", _scored_dataset(submission).root)
    with predictions_location(submission) as path:
        predicted = load_predictions("aasce-cobb", path, case_ids=list(truth))
    cases = list(truth)
    plot_bland_altman(
        out,
        ground_truth=np.array([truth[case]["angles"] for case in cases]),
        predictions=np.array([predicted[case]["angles"] for case in cases]),
        title=f"Submission #{submission.pk}: predicted vs ground-truth Cobb angles ({len(cases)} cases)",
    )


def overlay_slice(reference) -> int:
    """Index along the first array axis (z of a SimpleITK volume) of the slice with the most reference foreground
    voxels (the middle slice when the reference is empty)."""
    import numpy as np

    areas = (np.asarray(reference) > 0).reshape(len(reference), -1).sum(axis=1)
    return int(np.argmax(areas)) if areas.any() else len(reference) // 2


def _draw_overlay(out: Path, submission: Submission) -> None:
    """The first case (in the manifest's order): its input slice `overlay_slice` in grey (1st-99th percentile
    window), each reference label's contour solid green and each predicted label's dashed red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import SimpleITK as sitk

    from evaluators.formats import load_ground_truth, load_predictions
    from evaluators.layout import case_input_dir

    dataset = _scored_dataset(submission)
    truth = load_ground_truth(submission.phase.task, dataset.root)
    case_id = next(iter(truth))
    reference = sitk.GetArrayFromImage(sitk.ReadImage(str(truth[case_id])))
    image = sitk.GetArrayFromImage(sitk.ReadImage(str(case_input_dir(dataset.root, case_id) / "image.nii.gz")))
    with predictions_location(submission) as path:
        predicted = sitk.GetArrayFromImage(
            sitk.ReadImage(str(load_predictions(submission.phase.task, path, case_ids=list(truth))[case_id]))
        )
    index = overlay_slice(reference)
    figure, axes = plt.subplots(figsize=(5.5, 5.5))
    low, high = np.percentile(image[index], [1, 99])
    axes.imshow(image[index], cmap="gray", vmin=low, vmax=high)  # row 0 on top (radiological view)
    for mask, colour, style in ((reference, "tab:green", "solid"), (predicted, "tab:red", "dashed")):
        for label in np.unique(mask[index])[1:]:  # geometry was checked when the submission was scored
            axes.contour(mask[index] == label, levels=[0.5], colors=colour, linestyles=style, linewidths=1.2)
    axes.plot([], [], color="tab:green", label="reference")
    axes.plot([], [], color="tab:red", linestyle="--", label="prediction")
    axes.legend(loc="upper right", fontsize=8)
    axes.set(title=f"Submission #{submission.pk}: {case_id}, slice {index}", xticks=[], yticks=[])
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def _digest(*parts) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(relative: str, draw) -> str:
    """The stored name plots/<relative>, drawn by `draw(path)` when missing (a concurrent request never reads half
    a file: spinebench.uploads.stored_files.stored_once)."""
    return stored_once(f"plots/{relative}", draw)
