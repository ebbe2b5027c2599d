"""Benchmark section: Liu et al.'s Tables 1–4 — Dice and average symmetric surface distance (voxels) per class
(bone, disc, nerve, average) of the supervised 3D U-Net, fewshot-GAN and semi-cGAN on the in-domain and the
cross-dataset test groups, beside the paper's figures and an intensity-threshold reference measured in the same run.

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard") -> markdown
"""

from __future__ import annotations

from pathlib import Path

from ctxr_common import dataset, fallback_cell, fmt, score_predictions, table, train_all

from baselines import references

TASK = "lumbosacral-ct"
CASES = {"tiny": (3, 2), "standard": (10, 4), "paper": (74, 10)}
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
    data_root = Path(data_root) / "lumbosacral"
    small = preset != "paper"
    train_dir, source = dataset(TASK, data_root / "train", cases=n_train, seed=31, test=False, small=small)
    test_dir, _ = dataset(TASK, data_root / "test", cases=n_test, seed=32, test=True, small=small)
    results, seconds = train_all(
        TASK,
        dict(METHODS),
        preset=preset,
        train_dir=train_dir,
        test_dir=test_dir,
        work=data_root / "work",
        device=device,
    )
    results["intensity thresholds (reference)"] = score_predictions(
        TASK, references.intensity_thresholds(train_dir, test_dir), test_dir
    )
    parts = [
        "### Lumbosacral bone / disc / nerve segmentation (Liu et al.): 3D U-Net vs fewshot-GAN vs semi-cGAN",
        "",
        f"Preset `{preset}`, device `{device}`; data: {source}, {n_train} training volumes (labelled; the GANs also "
        f"use them unlabelled), {n_test} test volumes per group. Dice in %, ASD = average symmetric surface "
        f"distance in voxels; mean over test cases, measured in this run; in parentheses the paper's value (paper, "
        f"different data: 20 labelled + 54 unlabelled CT, 100 000 iterations on a GPU). Training + prediction "
        f"time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".",
    ]
    for group, title in GROUPS:
        for metric, name, scale, digits in (("dice", "Dice (%)", 100.0, 2), ("assd", "ASD (voxels)", 1.0, 3)):
            rows = []
            for label, metrics in results.items():
                aggregates = metrics["aggregates"]
                values = [aggregates.get(f"{metric}_{c}@{group}") for c in (*CLASSES, "mean")]
                cells = [fmt(None if v is None else scale * v, digits) for v in values]
                paper = PAPER[(group, metric)].get(label)
                if paper:
                    cells = [f"{c} ({p})" for c, p in zip(cells, paper.split())]
                rows.append([label, *cells, fallback_cell(metrics.get("run_report"))])
            parts += [
                "",
                f"#### {name}, {group} — paper's {title}",
                "",
                table(["Method", "Bone", "Disc", "Nerve", "Average", "Fallback (all groups)"], rows),
            ]
    return "\n".join(parts) + "\n"
