"""Benchmark section: Liu et al.'s Tables 1–4 — Dice and average symmetric surface distance (voxels) per class
(bone, disc, nerve, average) of the supervised 3D U-Net, fewshot-GAN and semi-cGAN on the in-domain and the
cross-dataset test groups, beside the paper's figures and an intensity-threshold reference measured in the same run.

Two settings on the same training volumes (issue #17, the paper's protocol): semi-supervised, where only the first
``LABELLED[preset]`` volumes are labelled (``labelled_cases``) and the rest are truly unlabelled, so the GANs see
unlabelled volumes and the 3D U-Net trains on the labelled ones only; and fully labelled (``labelled_cases=None``),
where every training volume is labelled and the GANs draw unlabelled patches from the same images. The paper's
figures are shown beside the semi-supervised rows, the setting it reports.

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard") -> markdown
"""

from __future__ import annotations

import time
from pathlib import Path

from ctxr_common import dataset, fallback_cell, fmt, score_predictions, table, train_and_score

from baselines import references

TASK = "lumbosacral-ct"
#: (training volumes, test volumes: half in each group) and how many training volumes are labelled in the
#: semi-supervised setting: the paper's 20 labelled + 54 unlabelled for ``standard`` and ``paper`` (the small
#: phantoms make 74 volumes cheap; training time depends on the iterations, not on the number of volumes).
CASES = {"tiny": (4, 2), "standard": (74, 20), "paper": (74, 10)}
LABELLED = {"tiny": 2, "standard": 20, "paper": 20}
METHODS = (("3D U-Net", "unet3d"), ("Fewshot-GAN", "fewshot-gan"), ("Semi-cGAN", "semi-cgan"))
CLASSES = ("bone", "disc", "nerve")
GROUPS = (("in-domain", "local dataset (Tables 1, 2)"), ("cross-dataset", "cross dataset (Tables 3, 4)"))
#: Liu et al. Tables 1–4: bone, disc, nerve, average. Dice in %, ASD in voxels.
PAPER = {
    ("in-domain", "dice"): {
        "3D U-Net": "92.35 90.60 86.50 89.81",
        "Fewshot-GAN": "92.94 90.11 87.08 90.04",
        "Semi-cGAN": "93.24 92.13 89.17 91.51",
    },
    ("in-domain", "assd"): {
        "3D U-Net": "0.387 3.296 0.741 1.475",
        "Fewshot-GAN": "0.358 3.449 0.749 1.519",
        "Semi-cGAN": "0.328 2.909 0.582 1.273",
    },
    ("cross-dataset", "dice"): {
        "3D U-Net": "88.40 90.32 87.19 88.64",
        "Fewshot-GAN": "89.55 87.83 87.78 88.39",
        "Semi-cGAN": "90.56 88.91 87.73 89.06",
    },
    ("cross-dataset", "assd"): {
        "3D U-Net": "0.695 0.504 2.734 1.311",
        "Fewshot-GAN": "0.632 0.652 0.801 0.695",
        "Semi-cGAN": "0.551 0.575 0.935 0.687",
    },
}


def run(*, data_root: Path, device: str, preset: str) -> str:
    n_train, n_test = CASES[preset]
    n_labelled = LABELLED[preset]
    data_root = Path(data_root) / "lumbosacral"
    small = preset != "paper"
    train_dir, source = dataset(TASK, data_root / "train", cases=n_train, seed=31, test=False, small=small)
    test_dir, _ = dataset(TASK, data_root / "test", cases=n_test, seed=32, test=True, small=small)
    n_unlabelled = n_train - n_labelled
    results, seconds, data = {}, {}, {}
    for setting, labelled_cases in (("semi", n_labelled), ("full", None)):
        for label, method in METHODS:
            start = time.perf_counter()
            key = (setting, label)
            results[key] = train_and_score(
                TASK,
                method,
                preset=preset,
                train_dir=train_dir,
                test_dir=test_dir,
                work=data_root / "work" / setting,
                device=device,
                overrides={"labelled_cases": labelled_cases},
            )
            seconds[key] = time.perf_counter() - start
            if setting == "full":
                data[key] = f"{n_train} labelled" + ("" if method == "unet3d" else " (images reused as unlabelled)")
            else:
                data[key] = f"{n_labelled} labelled" + ("" if method == "unet3d" else f" + {n_unlabelled} unlabelled")
    reference = ("reference", "intensity thresholds (reference)")
    results[reference] = score_predictions(TASK, references.intensity_thresholds(train_dir, test_dir), test_dir)
    data[reference] = f"class means of all {n_train} label maps"
    timing = ", ".join(f"{label} ({setting}) {s:.0f} s" for (setting, label), s in seconds.items())
    intro = (
        f"Preset `{preset}`, device `{device}`; data: {source}, {n_train} training volumes (seed 31) and {n_test} "
        f"test volumes, {n_test // 2} per group (seed 32). Two settings, trained on the same volumes. "
        f"**Semi-supervised** (the paper's protocol): the first {n_labelled} training volumes are labelled and the "
        f"other {n_unlabelled} are used without their labels (`labelled_cases={n_labelled}`); the GANs train on "
        f"both, the 3D U-Net on the {n_labelled} labelled volumes only (its one intensity mean and sd are computed "
        f"over all {n_train} images; no unlabelled patch enters its training). **Fully labelled**: all {n_train} "
        f"volumes labelled (`labelled_cases=None`); the GANs then draw their unlabelled patches from the same "
        f"images. Dice in %, ASD = average symmetric surface distance in voxels; mean over test cases, one "
        f"training seed (the preset's), measured in this run; in parentheses the paper's value for its "
        f"semi-supervised setting (paper, different data: 20 labelled + 54 unlabelled CT, 1 × 0.5 × 0.5 mm, "
        f"100 000 iterations on a GPU). Training + prediction time: {timing}."
    )
    parts = [
        "### Lumbosacral bone / disc / nerve segmentation (Liu et al.): 3D U-Net vs fewshot-GAN vs semi-cGAN",
        "",
        intro,
    ]
    for group, title in GROUPS:
        for metric, name, scale, digits in (("dice", "Dice (%)", 100.0, 2), ("assd", "ASD (voxels)", 1.0, 3)):
            rows = []
            for (setting, label), metrics in results.items():
                aggregates = metrics["aggregates"]
                values = [aggregates.get(f"{metric}_{c}@{group}") for c in (*CLASSES, "mean")]
                cells = [fmt(None if v is None else scale * v, digits) for v in values]
                paper = PAPER[(group, metric)].get(label) if setting == "semi" else None
                if paper:
                    cells = [f"{c} ({p})" for c, p in zip(cells, paper.split())]
                shown = {"semi": "semi-supervised", "full": "fully labelled", "reference": "—"}[setting]
                rows.append([label, shown, data[(setting, label)], *cells,
                             fallback_cell(metrics.get("run_report"))])
            parts += [
                "",
                f"#### {name}, {group} — paper's {title}",
                "",
                table(["Method", "Setting", "Training data", "Bone", "Disc", "Nerve", "Average",
                       "Fallback (all groups)"], rows),
            ]
    return "\n".join(parts) + "\n"
