"""Helpers shared by the CT/XR baseline benchmark sections (``ctxr_metastatic``, ``ctxr_labelling``,
``ctxr_lumbosacral``): dataset generation, training + prediction + scoring of one method (with the run report
``baselines.api.predict`` writes, under the metrics' ``"run_report"`` key), per-group statistics from the per-case
metrics, the fallback column, and markdown formatting."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

import phantoms
from baselines import api
from baselines.report import RunReport, read_report, report_path
from evaluators import formats, tasks
from evaluators.layout import read_manifest


def dataset(task: str, out: Path, *, cases: int, seed: int, test: bool, small: bool) -> tuple[Path, str]:
    """Generate (or reuse) a phantom dataset folder named after its case count and seed under ``out``; returns it
    and a phrase naming its source for the report."""
    out = Path(out) / f"{cases}cases-seed{seed}{'-small' if small else ''}"
    if not (out / "dataset.json").is_file():
        phantoms.generate(task, out=out, cases=cases, seed=seed, domain="test" if test else "train", small=small,
                          progress=False)
    return out, f"phantoms.generate(small={small})"


#: Set by ``baselines_ct_xr.py --reuse-checkpoints``: predict with a checkpoint an earlier run of the same preset left
#: in the work folder instead of training again (the tables then say that their times exclude training).
REUSE_CHECKPOINTS = False


def train_and_score(task: str, method: str, *, preset: str, train_dir: Path, test_dir: Path, work: Path,
                    device: str, overrides: dict | None = None) -> dict:
    """Train one registered method with ``baselines.api``, predict the test inputs from ``inputs/`` only and
    return the ``evaluators.tasks.evaluate`` metrics object, plus the run report under ``"run_report"``."""
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = work / f"{method}.pt"
    if not (REUSE_CHECKPOINTS and checkpoint.is_file()):
        checkpoint = api.train(task, method, preset=preset, data_dir=train_dir, out=checkpoint,
                               device=device, progress=False, overrides=overrides)
    predictions = api.predict(task, method, checkpoint=checkpoint, data_dir=test_dir, out=work / f"{method}-pred",
                              device=device, progress=False)
    return {**tasks.evaluate(task, predictions=predictions, ground_truth=test_dir),
            "run_report": read_report(report_path(predictions))}


def fallback_cell(run: RunReport | None) -> str:
    """``RunReport.summary()`` (fallback cases of all cases, degenerate runs flagged); 'n/a' for a reference row."""
    return "n/a" if run is None else run.summary()


def train_all(task: str, methods: dict[str, str], *, preset: str, train_dir: Path, test_dir: Path, work: Path,
              device: str) -> tuple[dict, dict]:
    """Train and score each ``{row label: registered method}``; returns (metrics by label, seconds by label)."""
    results, seconds = {}, {}
    for label, method in methods.items():
        start = time.perf_counter()
        results[label] = train_and_score(task, method, preset=preset, train_dir=train_dir, test_dir=test_dir,
                                         work=work, device=device)
        seconds[label] = time.perf_counter() - start
    return results, seconds


def score_predictions(task: str, predictions: dict, test_dir: Path) -> dict:
    """Score in-memory predictions (a reference method's) exactly like a submission."""
    with tempfile.TemporaryDirectory() as tmp:
        out = formats.write_predictions(task, predictions, Path(tmp) / "pred")
        return tasks.evaluate(task, predictions=out, ground_truth=test_dir)


def group_stats(metrics: dict, key: str, members: list[str]) -> tuple[float, float]:
    """Mean and standard deviation of a per-case metric over ``members`` (cases with a null value skipped)."""
    values = [metrics["case"][case].get(key) for case in members if case in metrics["case"]]
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    return float(np.mean(values)), float(np.std(values))


def members_by_group(test_dir: Path) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for case in read_manifest(test_dir).cases:
        result.setdefault(case.group or "all", []).append(case.id)
    return result


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def fmt_pm(mean: float, std: float, digits: int = 3) -> str:
    return f"{fmt(mean, digits)} ± {fmt(std, digits)}"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
