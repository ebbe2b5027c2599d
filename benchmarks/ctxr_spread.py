"""Benchmark section: the training-seed spread of one CT/XR method. Three trainings of the CT presets cost hours,
so the CT sections report one seed per method and this section measures, for one method, how far its scores move
when only the training seed changes (initialisation, patch sampling and augmentation; the data stay the same).

    run(data_root=Path("/tmp/ctxr"), device="cpu", preset="standard", task="metastatic-body-ct",
        method="unet3d-str", seeds=(0, 1, 2)) -> markdown

The data are the section's own phantom sets (``ctxr_metastatic``, ``ctxr_labelling``, ``ctxr_lumbosacral``: the same
case counts and data seeds, so an earlier section run's folders are reused). Every numeric aggregate of the task's
evaluator is listed per seed with its mean ± sample standard deviation, beside each run's fallback cell
(``baselines.report``).
"""

from __future__ import annotations

import importlib
import math
import time
from pathlib import Path

import numpy as np
from ctxr_common import dataset, fallback_cell, fmt, table, train_and_score

#: task -> (section module, data folder, training data seed, test data seed), as the sections generate them
SECTIONS = {
    "metastatic-body-ct": ("ctxr_metastatic", "metastatic", 11, 12),
    "vertebra-labelling-xr": ("ctxr_labelling", "labelling", 21, 22),
    "lumbosacral-ct": ("ctxr_lumbosacral", "lumbosacral", 31, 32),
}


def spread_rows(results: list[dict]) -> list[list[str]]:
    """One row per aggregate that every run reports as a finite number: the per-seed values, then mean ± sd."""
    names = sorted(set.intersection(*(set(r["aggregates"]) for r in results)))
    rows = []
    for name in names:
        values = [r["aggregates"][name] for r in results]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            continue
        sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
        rows.append([name, *(fmt(float(v)) for v in values), f"{fmt(float(np.mean(values)))} ± {fmt(sd)}"])
    return rows


def run(*, data_root: Path, device: str, preset: str, task: str, method: str, seeds=(0, 1, 2)) -> str:
    if task not in SECTIONS:
        raise ValueError(f"no seed-spread data for task {task!r}; tasks: {', '.join(SECTIONS)}")
    module_name, folder, train_seed, test_seed = SECTIONS[task]
    n_train, n_test = importlib.import_module(module_name).CASES[preset]
    root = Path(data_root) / folder
    small = preset != "paper"
    train_dir, source = dataset(task, root / "train", cases=n_train, seed=train_seed, test=False, small=small)
    test_dir, _ = dataset(task, root / "test", cases=n_test, seed=test_seed, test=True, small=small)
    results, seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        results.append(train_and_score(task, method, preset=preset, train_dir=train_dir, test_dir=test_dir,
                                       work=root / "work" / f"spread-{method}-seed{seed}", device=device,
                                       overrides={"seed": seed}))
        seconds.append(time.perf_counter() - start)
    header = ["Aggregate", *(f"seed {seed}" for seed in seeds), "mean ± sd"]
    rows = spread_rows(results)
    rows.append(["fallback", *(fallback_cell(r.get("run_report")) for r in results), ""])
    return "\n".join([
        f"### Training-seed spread: {method} ({task})",
        "",
        f"Preset `{preset}`, device `{device}`; data: {source}, {n_train} training and {n_test} test cases (the "
        f"{folder} section's sets). Only the training seed changes between the columns; the sd is the sample "
        "standard deviation over the seeds. Three seeds of every CT method would cost hours, so this one method "
        "stands for the spread of the CT tables' single-seed rows. Training + prediction time: "
        + ", ".join(f"seed {seed} {s:.0f} s" for seed, s in zip(seeds, seconds)) + ".",
        "",
        table(header, rows),
    ]) + "\n"
