"""Benchmark section: Bayat et al.'s Tables 1–2 — identification rate and localisation distance (mean, std) of the
heatmap U-Net alone and U-Net + residual corrector, for sagittal and coronal radiographs, beside the paper's figures
and a mean-position reference measured in the same run.

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard") -> markdown
"""

from __future__ import annotations

from pathlib import Path

from ctxr_common import dataset, fallback_cell, fmt, score_predictions, table, train_all

from baselines import references

TASK = "vertebra-labelling-xr"
CASES = {"tiny": (4, 2), "standard": (40, 12), "paper": (200, 44)}
METHODS = (("U-Net", "unet-heatmaps"), ("U-Net+RC", "unet-residual-corrector"))
#: Bayat et al. Tables 1 (sagittal) and 2 (coronal): id. rate, d_mean (mm), d_std (mm)
PAPER = {
    "sagittal": {"U-Net": ("61.3%", "11.54", "12.73"), "U-Net+RC": ("85.32%", "4.57", "3.84")},
    "coronal": {"U-Net": ("44.5%", "12.32", "11.12"), "U-Net+RC": ("52.63%", "5.33", "5.94")},
}


def run(*, data_root: Path, device: str, preset: str) -> str:
    n_train, n_test = CASES[preset]
    data_root = Path(data_root) / "labelling"
    small = preset != "paper"
    train_dir, source = dataset(TASK, data_root / "train", cases=n_train, seed=21, test=False, small=small)
    test_dir, _ = dataset(TASK, data_root / "test", cases=n_test, seed=22, test=True, small=small)
    results, seconds = train_all(TASK, dict(METHODS), preset=preset, train_dir=train_dir, test_dir=test_dir,
                                 work=data_root / "work", device=device)
    results["mean position (reference)"] = score_predictions(TASK, references.mean_position(train_dir, test_dir),
                                                             test_dir)
    parts = [
        "### Vertebra labelling in radiographs (Bayat et al.): U-Net vs U-Net + residual corrector",
        "",
        f"Preset `{preset}`, device `{device}`; data: {source}, {n_train} training and {n_test} test radiographs "
        f"(sagittal and coronal; one model per view). Identification: the nearest ground-truth vertebra within 20 mm "
        f"has the predicted label (evaluators). Measured in this run; in parentheses the paper's value (paper, "
        f"different data: 100 training patients per view, full-size radiographs, a GPU). Training + prediction "
        f"time: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + ".",
    ]
    for view in ("sagittal", "coronal"):
        rows = []
        for label, metrics in results.items():
            aggregates = metrics["aggregates"]
            paper = PAPER[view].get(label)
            rate = aggregates.get(f"id_rate@{view}")
            cells = [
                "n/a" if rate is None else f"{100 * rate:.1f}%",
                fmt(aggregates.get(f"loc_mean_mm@{view}"), 2),
                fmt(aggregates.get(f"loc_std_mm@{view}"), 2),
            ]
            if paper:
                cells = [f"{c} ({p})" for c, p in zip(cells, paper)]
            rows.append([label, *cells, fallback_cell(metrics.get("run_report"))])
        parts += ["", f"#### {view.capitalize()} view", "",
                  table(["Method", "Id. rate", "d_mean (mm)", "d_std (mm)", "Fallback (all views)"], rows)]
    return "\n".join(parts) + "\n"
