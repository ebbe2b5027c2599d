"""Benchmark section: Klein et al.'s 8 × 4 table — the 3D U-Net trained with each augmentation setting (N, S, T, R,
ST, SR, TR, STR) and tested under the four conditions (given, translated, resampled, translated+resampled), Dice and
Concurrency as mean ± standard deviation over test cases, beside the paper's figures and an intensity-window
reference measured in the same run.

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard") -> markdown
"""

from __future__ import annotations

from pathlib import Path

import ctxr_common
import numpy as np
import SimpleITK as sitk
from ctxr_common import (
    dataset,
    fallback_cell,
    fmt_pm,
    group_stats,
    members_by_group,
    score_predictions,
    table,
    train_all,
)

from baselines import references

TASK = "metastatic-body-ct"
GROUPS = ("given", "translated", "resampled", "translated+resampled")
ORDER = ("STR", "SR", "ST", "S", "TR", "R", "T", "N")  # the paper's row order
#: (training cases, test base cases; each base case appears in all four test groups)
CASES = {"tiny": (4, 1), "standard": (16, 4), "paper": (200, 30)}

#: Klein et al. Table 1a/1b, mean (std) per test condition N_D, T_D, R_D, TR_D and the total average.
PAPER_DICE = {
    "STR": "0.904 0.904 0.904 0.905 0.904", "SR": "0.910 0.828 0.914 0.820 0.868",
    "ST": "0.905 0.905 0.897 0.895 0.900", "S": "0.908 0.841 0.904 0.852 0.876",
    "TR": "0.899 0.899 0.896 0.895 0.897", "R": "0.906 0.754 0.904 0.729 0.823",
    "T": "0.896 0.896 0.885 0.880 0.889", "N": "0.910 0.688 0.905 0.595 0.774",
}
PAPER_CONCURRENCY = {
    "STR": "0.908 0.908 0.909 0.909 0.908", "SR": "0.913 0.844 0.916 0.844 0.879",
    "ST": "0.908 0.908 0.901 0.899 0.904", "S": "0.912 0.848 0.907 0.859 0.881",
    "TR": "0.902 0.903 0.900 0.899 0.901", "R": "0.909 0.776 0.908 0.753 0.836",
    "T": "0.900 0.901 0.893 0.888 0.895", "N": "0.913 0.717 0.908 0.643 0.795",
}


def _hu(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path))).astype(np.float32)


def _row(name: str, metrics: dict, key: str, members: dict, paper: str | None) -> list[str]:
    cells, paper_values = [name], (paper.split() if paper else [None] * 5)
    all_cases = []
    for group, reported in zip(GROUPS, paper_values):
        cell = fmt_pm(*group_stats(metrics, key, members.get(group, [])))
        cells.append(cell + (f" ({reported})" if reported else ""))
        all_cases += members.get(group, [])
    total = fmt_pm(*group_stats(metrics, key, all_cases))
    cells.append(total + (f" ({paper_values[4]})" if paper_values[4] else ""))
    return cells + [fallback_cell(metrics.get("run_report"))]


def run(*, data_root: Path, device: str, preset: str) -> str:
    n_train, n_test = CASES[preset]
    data_root = Path(data_root) / "metastatic"
    small = preset != "paper"
    train_dir, source = dataset(TASK, data_root / "train", cases=n_train, seed=11, test=False, small=small)
    test_dir, _ = dataset(TASK, data_root / "test", cases=n_test, seed=12, test=True, small=small)
    members = members_by_group(test_dir)
    results, seconds = train_all(TASK, {combo: f"unet3d-{combo.lower()}" for combo in ORDER}, preset=preset,
                                 train_dir=train_dir, test_dir=test_dir, work=data_root / "work", device=device)
    reference = score_predictions(TASK, references.intensity_window(train_dir, test_dir), test_dir)
    header = ["Model", "N_D given", "T_D translated", "R_D resampled", "TR_D translated+resampled", "Total avg.",
              "Fallback"]
    parts = [
        "### Metastatic vertebral-body segmentation (Klein et al.): 3D U-Net × 8 augmentation settings",
        "",
        f"Preset `{preset}`, device `{device}`; data: {source}, {n_train} training cases, {n_test} test base cases "
        f"× 4 test conditions. Cells: mean ± std over test cases, measured in this run; in parentheses the paper's "
        f"value (paper, different data: 530 in-house training segmentations, a GPU and 200 epochs). "
        + ("Prediction time per model (the checkpoints of an earlier run of this preset were reused, so no training "
         "time was measured): " if ctxr_common.REUSE_CHECKPOINTS else "Training + prediction time per model: ")
        + ", ".join(f"{c}_M {seconds[c]:.0f} s" for c in ORDER) + ".",
    ]
    for title, key, paper in (("Dice", "dice", PAPER_DICE), ("Concurrency", "concurrency", PAPER_CONCURRENCY)):
        rows = [_row(f"{combo}_M", results[combo], key, members, paper[combo]) for combo in ORDER]
        rows.append(_row("intensity window (reference)", reference, key, members, None))
        parts += ["", f"#### {title} (paper, different data, in parentheses)", "", table(header, rows)]
    return "\n".join(parts) + "\n"
