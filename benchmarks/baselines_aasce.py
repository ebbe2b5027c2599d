"""Train and score every AASCE 2019 baseline on phantoms; write the AASCE section of baselines/RESULTS.md.

    nice -n 10 .venv/bin/python benchmarks/baselines_aasce.py [--preset standard] [--methods a,b] [--device auto]
        [--train-cases 120] [--test-cases 40] [--seed 0] [--work DIR] [--results baselines/RESULTS.md] [--no-write]
        [--train-only | --reuse] [--training-seeds 0,1,2]

Generates a phantom training set (``phantoms.generate("aasce-cobb", domain="train")``) and a test set with
``domain="test"`` (wider field of view, other exposure, as the challenge's test images), trains each method through
``baselines.api.train`` with the chosen preset, predicts the test set from its inputs through ``baselines.api.predict``
and scores it with the task's evaluator (``evaluators.tasks``: SMAPE, per-angle MAE). Training and inference times
are wall-clock seconds. Two reference rows are measured in the same run on the same test set:
- "training mean": every test case predicted as the mean PT, MT, TL of the training set (a method that does not
  beat it has learned nothing useful about the image);
- "landmarks + 2 px noise": the official angles (``evaluators.cobb.cobb_angles``) from the test set's ground-truth
  landmarks moved by Gaussian noise of 2 pixels (std per coordinate): what near-perfect landmark detection scores.
With ``--work DIR``, ``--train-only`` trains the chosen methods into DIR (checkpoint + training time), so several
processes can train different methods at once; ``--reuse`` then predicts with those checkpoints and writes the table
with the stored training times. With ``--training-seeds 0,1,2`` every method is trained once per seed (the config's
``seed``: initialisation, sampling and augmentation; the data stay the same) and its row gives the mean ± sample
standard deviation over the seeds (SMAPE; the other columns are means), the fallback column sums the seeds' test
cases, and a method degenerate under any seed does not count as beating the mean. For rotated-proposals a second row
predicts with the same checkpoint and the box-corner fallback on (``corner_tolerance=0.25``: a corner further than a
quarter of its box's height from the rotated box's corner takes the box's; the method itself keeps every corner its
landmark FCN finds), so the table shows what replacing stray corners by box corners would change. The fallback
column counts the test cases on which the method's own output was replaced by a fallback (training mean, zeros, box
corners, ...; ``baselines.report``, from the run report ``baselines.api.predict`` writes) and marks degenerate runs
(constant predictions, or fallbacks on more than half of the cases); a degenerate run does not count as beating the
training mean. Beside each method the SMAPE its paper reports is shown for orientation only: it was measured on the
challenge's real radiographs, not on these phantoms. The section sits between ``<!-- aasce:start -->`` and
``<!-- aasce:end -->``; the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import phantoms  # noqa: E402
from baselines import api  # noqa: E402
from baselines.registry import METHODS  # noqa: E402
from baselines.report import RunReport, read_report, report_path  # noqa: E402
from evaluators.cobb import cobb_angles  # noqa: E402
from evaluators.formats import write_predictions  # noqa: E402
from evaluators.tasks import get_task  # noqa: E402

TASK = "aasce-cobb"
START, END = "<!-- aasce:start -->", "<!-- aasce:end -->"
METRICS = ("smape", "mae_pt", "mae_mt", "mae_tl")
# SMAPE (%) each paper reports (csi2019-proceedings, AASCE part) and on which images.
PAPER_SMAPE = {
    "keypoint-fusion": (22.17, "challenge test, fusion of methods 1+2"),
    "seg4reg": (21.71, "challenge test, ensemble, angles < 4° set to 0"),
    "top-down": (26.05, "challenge test"),
    "detector-corners": (25.69, "challenge test, crop + outlier rejection + smoothing"),
    "centreline-cascade": (22.96, "challenge leaderboard, ensemble of 5 ensembles"),
    "rotated-proposals": (25.48, "challenge test"),
    "coarse-to-fine": (24.80, "challenge test, after curve refinement"),
    "scg-net": (22.18, "challenge test (5th place)"),
    "multi-task": (12.97, "challenge validation set (VGG11 + PFA + mask)"),
}


def evaluate(predictions: dict, test_dir: Path, work: Path, name: str) -> dict:
    path = write_predictions(TASK, predictions, work / f"{name}.csv")
    scores = get_task(TASK).evaluate(predictions=path, ground_truth=test_dir)["aggregates"]
    return {key: scores.get(key) for key in METRICS}


def reference_rows(train_dir: Path, test_dir: Path, work: Path, rng: np.random.Generator) -> list[dict]:
    train_angles = pd.read_csv(train_dir / "ground_truth" / "angles.csv", dtype={"case_id": str})
    mean = train_angles[["pt", "mt", "tl"]].mean().to_numpy()
    landmarks = pd.read_csv(test_dir / "ground_truth" / "landmarks.csv", dtype={"case_id": str})
    case_ids = landmarks["case_id"].tolist()
    rows = []
    start = time.perf_counter()
    scores = evaluate({c: {"angles": [float(a) for a in mean]} for c in case_ids}, test_dir, work, "training-mean")
    rows.append(
        {
            "method": "reference: training mean",
            **scores,
            "train_s": None,
            "predict_s": time.perf_counter() - start,
            "paper": None,
            "note": f"PT/MT/TL = {np.round(mean, 2).tolist()}",
        }
    )
    noisy = {}
    start = time.perf_counter()
    for _, row in landmarks.iterrows():
        points = np.column_stack(
            [row[[f"x{i}" for i in range(1, 69)]].to_numpy(float), row[[f"y{i}" for i in range(1, 69)]].to_numpy(float)]
        )
        points = points + rng.normal(0.0, 2.0, points.shape)
        noisy[row["case_id"]] = {"angles": [float(a) for a in cobb_angles(points, float(row["image_height"]))]}
    scores = evaluate(noisy, test_dir, work, "landmarks-noise")
    rows.append(
        {
            "method": "reference: GT landmarks + 2 px noise",
            **scores,
            "train_s": None,
            "predict_s": time.perf_counter() - start,
            "paper": None,
            "note": "official angle rules",
        }
    )
    return rows


def _dataset(out: Path, *, cases: int, seed: int, domain: str, small: bool, reuse: bool) -> Path:
    """The phantom set in ``out``; with ``reuse`` an existing one generated with the same seed, domain and case count
    is kept (generation is deterministic), so parallel --train-only processes and the --reuse run share one copy."""
    manifest = out / "dataset.json"
    if reuse and manifest.is_file():
        meta = json.loads(manifest.read_text(encoding="utf-8"))
        if (meta.get("seed"), meta.get("domain"), len(meta.get("cases", []))) == (seed, domain, cases):
            return out
    return Path(phantoms.generate(TASK, out=out, cases=cases, seed=seed, domain=domain, small=small))


def run_method(
    method: str,
    *,
    preset: str,
    train_dir: Path,
    test_dir: Path,
    work: Path,
    device: str,
    reuse: bool = False,
    train_only: bool = False,
    training_seed: int | None = None,
) -> dict:
    name = method if training_seed is None else f"{method}-seed{training_seed}"
    checkpoint, timing = work / f"{name}.pt", work / f"{name}.train.json"
    if reuse and checkpoint.is_file() and timing.is_file():
        stored = json.loads(timing.read_text(encoding="utf-8"))
        if stored.get("preset") != preset:
            raise ValueError(f"{checkpoint}: trained with preset {stored.get('preset')!r}, not {preset!r}")
        train_s = float(stored["train_s"])
    else:
        start = time.perf_counter()
        api.train(
            TASK,
            method,
            preset=preset,
            data_dir=train_dir,
            out=checkpoint,
            device=device,
            progress=True,
            overrides=None if training_seed is None else {"seed": training_seed},
        )
        train_s = time.perf_counter() - start
        timing.write_text(json.dumps({"train_s": train_s, "preset": preset}), encoding="utf-8")
    if train_only:
        return {"method": method, "train_s": train_s}
    start = time.perf_counter()
    path = api.predict(
        TASK, method, checkpoint=checkpoint, data_dir=test_dir, out=work / f"{name}.csv", device=device, progress=True
    )
    predict_s = time.perf_counter() - start
    scores = get_task(TASK).evaluate(predictions=path, ground_truth=test_dir)["aggregates"]
    paper = PAPER_SMAPE.get(method)
    return {
        "method": method,
        **{key: scores.get(key) for key in METRICS},
        "train_s": train_s,
        "predict_s": predict_s,
        "paper": paper,
        "note": "",
        "report": read_report(report_path(path)),
        "checkpoint": checkpoint,
    }


def combine_seeds(rows: list[dict], seeds: list[int]) -> dict:
    """One row from the runs of one method under several training seeds: metric means, the SMAPE's sample standard
    deviation (``smape_sd``) and every seed's run report (``reports``)."""
    first = rows[0]
    combined = {key: first[key] for key in ("method", "paper") if key in first}
    for key in (*METRICS, "train_s", "predict_s"):
        values = [row[key] for row in rows if row.get(key) is not None]
        combined[key] = float(np.mean(values)) if values else None
    smapes = [row["smape"] for row in rows if row.get("smape") is not None]
    combined["smape_sd"] = float(np.std(smapes, ddof=1)) if len(smapes) > 1 else None
    combined["reports"] = [row["report"] for row in rows]
    combined["note"] = f"training seeds {', '.join(map(str, seeds))}"
    combined["variant"] = first.get("variant", False)
    return combined


CORNER_TOLERANCE = 0.25  # box heights: the box-corner fallback of the variant row
WITH_CORNER_FALLBACK = f"rotated-proposals, box-corner fallback at {CORNER_TOLERANCE}"


def with_corner_fallback(checkpoint: Path, *, test_dir: Path, work: Path, device: str, train_s: float) -> dict:
    """The rotated-proposals row with the box-corner fallback on: the same checkpoint,
    ``corner_tolerance=CORNER_TOLERANCE``."""
    stored = torch.load(checkpoint, map_location="cpu", weights_only=True)
    stored["config"]["corner_tolerance"] = CORNER_TOLERANCE
    variant = Path(checkpoint).with_name(Path(checkpoint).stem + "-box-corner-fallback.pt")
    torch.save(stored, variant)
    start = time.perf_counter()
    path = api.predict(
        TASK,
        "rotated-proposals",
        checkpoint=variant,
        data_dir=test_dir,
        out=variant.with_suffix(".csv"),
        device=device,
        progress=True,
    )
    predict_s = time.perf_counter() - start
    scores = get_task(TASK).evaluate(predictions=path, ground_truth=test_dir)["aggregates"]
    return {
        "method": WITH_CORNER_FALLBACK,
        **{key: scores.get(key) for key in METRICS},
        "train_s": train_s,
        "predict_s": predict_s,
        "paper": None,
        "note": f"same checkpoint, corner_tolerance={CORNER_TOLERANCE}",
        "report": read_report(report_path(path)),
        "variant": True,
    }


def fallback_cell(run: RunReport | None, runs: list[RunReport] | None = None) -> str:
    """``RunReport.summary()`` (fallback cases of all cases, degenerate runs flagged); over several training seeds
    (``runs``) the cases summed and the degenerate seeds counted; empty for a reference row."""
    if runs:
        counts: dict[str, int] = {}
        for item in runs:
            for fallback, count in item.fallback_counts.items():
                counts[fallback] = counts.get(fallback, 0) + count
        cell = f"{sum(counts.values())}/{sum(len(item.cases) for item in runs)}"
        if counts:
            cell += " (" + ", ".join(f"{name} {count}" for name, count in sorted(counts.items())) + ")"
        degenerate = sum(item.degenerate for item in runs)
        return cell + (f", degenerate in {degenerate} of {len(runs)} seeds" if degenerate else "")
    return "" if run is None else run.summary()


def _degenerate(row: dict) -> bool:
    runs = row.get("reports") or ([row["report"]] if row.get("report") else [])
    return any(run.degenerate for run in runs)


def _fmt(value, digits: int = 2) -> str:
    return "—" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


def render(rows: list[dict], *, args, n_train: int, n_test: int, device: str, total_s: float) -> str:
    mean_smape = next(r["smape"] for r in rows if r["method"] == "reference: training mean")
    timing = (
        f"the methods were trained by separate `--train-only` processes (their training times are stored with "
        f"the checkpoints) and this `--reuse` run predicted and scored in {total_s / 60:.1f} min."
        if args.reuse
        else f"whole run {total_s / 60:.1f} min."
    )
    lines = [
        START,
        "## AASCE 2019 Cobb-angle baselines (task `aasce-cobb`)",
        "",
        f"Generated by `benchmarks/baselines_aasce.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: preset "
        f"`{args.preset}`, {n_train} training phantoms (seed {args.seed}, domain train) and {n_test} test phantoms "
        f"(seed {args.seed + 1}, domain test: wider field of view, other exposure), device `{device}`, "
        f"{torch.get_num_threads()} torch thread(s), {'reduced-size' if args.small else 'full-size'} training images "
        f"and full-size test images (1400-3000 rows), "
        f"{platform.machine()} CPU shared with other jobs (times are wall clock and include that contention); "
        f"{timing}",
        "",
        "SMAPE (%, lower is better) and mean absolute error per angle (degrees) on the phantom test set. "
        "\"vs mean\" is the method's SMAPE divided by the training-mean row's (below 1 = better than predicting the "
        'training mean). "fallback" counts the test cases where the method\'s own output was replaced by a fallback '
        "(by name), and marks a run **degenerate** when its predictions are constant or more than half are fallbacks "
        "(`baselines.report`). "
        + (
            f"Each method was trained with seeds {getattr(args, 'training_seeds', '')}: SMAPE is the mean ± sample "
            "standard deviation over those runs, the other columns are means and the fallback column sums their test "
            "cases. "
            if getattr(args, "training_seeds", "")
            else ""
        )
        + "The paper column is the SMAPE each paper reports on the challenge's real radiographs "
        "(paper, different data): for orientation only, not comparable with the phantom numbers.",
        "",
        "| method | SMAPE | vs mean | MAE PT | MAE MT | MAE TL | fallback | train s | predict s "
        "| paper SMAPE (paper, different data) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | --- |",
    ]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed: {row['error']} | | | | | | | | |")
            continue
        ratio = row["smape"] / mean_smape if row["smape"] is not None and mean_smape else None
        paper = f"{row['paper'][0]:.2f} ({row['paper'][1]})" if row.get("paper") else (row.get("note") or "")
        smape = _fmt(row["smape"]) + (f" ± {_fmt(row['smape_sd'])}" if row.get("smape_sd") is not None else "")
        lines.append(
            f"| {row['method']} | {smape} | {_fmt(ratio)} | {_fmt(row['mae_pt'])} | {_fmt(row['mae_mt'])} "
            f"| {_fmt(row['mae_tl'])} | {fallback_cell(row.get('report'), row.get('reports'))} "
            f"| {_fmt(row['train_s'], 0)} "
            f"| {_fmt(row['predict_s'], 1)} | {paper} |"
        )
    methods = [
        r for r in rows if not r["method"].startswith("reference") and not r.get("error") and not r.get("variant")
    ]
    beaten = [r["method"] for r in methods if r["smape"] is not None and r["smape"] < mean_smape and not _degenerate(r)]
    lines += [
        "",
        f"{len(beaten)} of {len(methods)} methods that ran beat the training-mean row without being degenerate"
        + (
            f" (not: {', '.join(sorted(set(r['method'] for r in methods) - set(beaten)))})."
            if len(beaten) < len(methods)
            else "."
        ),
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    text = path.read_text(encoding="utf-8") if path.is_file() else "# Baseline results\n\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text, encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="standard")
    parser.add_argument("--methods", default=",".join(METHODS[TASK]), help="comma-separated method names")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--train-cases", type=int, default=120)
    parser.add_argument("--test-cases", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--full-size-train",
        dest="small",
        action="store_false",
        help="full-size training phantoms (default: reduced-size; the test set is always full-size so "
        "the 2 px landmark noise is in the challenge's pixel units)",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--work", type=Path, default=None, help="folder for datasets and checkpoints (default: temp)")
    parser.add_argument(
        "--results", type=Path, default=Path(__file__).resolve().parents[1] / "baselines" / "RESULTS.md"
    )
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a method's checkpoint and training time already in --work (trained with the same "
        "preset on the same data) instead of training again",
    )
    parser.add_argument(
        "--training-seeds",
        default="",
        help="comma-separated training seeds: each method trained once per seed, rows show mean ± sd "
        "(default: one run with the preset's seed)",
    )
    parser.add_argument(
        "--train-only",
        action="store_true",
        help="train the methods into --work and stop (a later --reuse run predicts and writes the table)",
    )
    args = parser.parse_args(argv)
    if (args.reuse or args.train_only) and args.work is None:
        parser.error("--reuse and --train-only need --work")
    torch.set_num_threads(args.threads)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS[TASK]))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS[TASK])}")
    device = str(api.resolve_device(args.device))
    work = args.work or Path(tempfile.mkdtemp(prefix="aasce-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    train_dir = _dataset(
        work / "train",
        cases=args.train_cases,
        seed=args.seed,
        domain="train",
        small=args.small,
        reuse=args.reuse or args.train_only,
    )
    test_dir = _dataset(
        work / "test",
        cases=args.test_cases,
        seed=args.seed + 1,
        domain="test",
        small=False,
        reuse=args.reuse or args.train_only,
    )
    rows = reference_rows(Path(train_dir), Path(test_dir), work, np.random.default_rng(args.seed))
    seeds = [int(s) for s in args.training_seeds.split(",") if s.strip()]
    for method in methods:
        print(f"== {method}", flush=True)
        runs, variants = [], []
        seed_list: list[int | None] = [*seeds] or [None]
        for seed in seed_list:
            try:
                row = run_method(
                    method,
                    preset=args.preset,
                    train_dir=Path(train_dir),
                    test_dir=Path(test_dir),
                    work=work,
                    device=device,
                    reuse=args.reuse,
                    train_only=args.train_only,
                    training_seed=seed,
                )
            except Exception as error:  # one failing method must not hide the others' results
                traceback.print_exc()
                row = {
                    "method": method,
                    "error": f"{type(error).__name__}: {str(error)[:120]}"
                    + ("" if seed is None else f" (training seed {seed})"),
                }
            print(row, flush=True)
            runs.append(row)
            if method == "rotated-proposals" and not args.train_only and not row.get("error"):
                try:
                    variants.append(
                        with_corner_fallback(
                            row["checkpoint"], test_dir=Path(test_dir), work=work, device=device, train_s=row["train_s"]
                        )
                    )
                except Exception as error:  # the variant row must not hide the others either
                    traceback.print_exc()
                    variants.append(
                        {
                            "method": WITH_CORNER_FALLBACK,
                            "error": f"{type(error).__name__}: {str(error)[:120]}",
                        }
                    )
        if args.train_only:
            continue
        for group in (runs, variants):
            failed = [row for row in group if row.get("error")]
            if failed or len(group) == 1:
                rows.append(failed[0] if failed else group[0])
            elif group:
                rows.append(combine_seeds(group, seeds))
    if args.train_only:
        print(f"trained {', '.join(methods)} into {work}")
        return 0
    section = render(
        rows,
        args=args,
        n_train=args.train_cases,
        n_test=args.test_cases,
        device=device,
        total_s=time.perf_counter() - began,
    )
    if args.no_write:
        print(section)
    else:
        write_section(args.results, section)
        print(f"wrote the AASCE section of {args.results}")
        print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
