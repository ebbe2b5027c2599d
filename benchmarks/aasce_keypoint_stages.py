"""How often each stage of keypoint-fusion (``baselines.aasce.keypoint``) fails on the AASCE phantom test set.

    nice -n 5 .venv/bin/python benchmarks/aasce_keypoint_stages.py --work DIR [--seeds 0,1,2] [--json OUT]

Reads the checkpoints ``DIR/keypoint-fusion-seed{N}.pt`` and the test phantoms ``DIR/test`` that
``benchmarks/baselines_aasce.py --work DIR --train-only --training-seeds ...`` left there (it trains nothing) and runs
the prediction of ``keypoint.predict`` case by case with the module's own functions, in the same order and with the
same per-case random generator, keeping what each stage returned. Each case's fused angles are compared with the
``DIR/keypoint-fusion-seed{N}.csv`` the benchmark's ``--reuse`` run wrote, when present (``max |Δangle|`` in the
output), to show that this replay is that run.

A stage fails on a case when (the ground truth is read only here, never by the method):
- framing: the crop the method picked (window search by SimpleBaseline I's confidence, then ``common.refine_crop``)
  has an intersection-over-union below 0.5 with the crop ``Framing.crop_box`` makes from the case's 68 ground-truth
  landmarks with the checkpoint's training framing (the crop a perfect SimpleBaseline I would give);
- Method-1 (RetinaNet boxes + HRNet corners, after box filtering and merging): it returns a vertebra count other than
  the ground truth's 17 (0 = nothing found);
- Method-2 and Method-2 squeezed (SimpleBaseline II patches + clustering, without / with the squeezed-vertebra
  check): the same;
- fusion: ``fuse`` returns nothing (no output has two vertebrae) and the training-mean fallback is taken.
Also counted, not as failures: the cases where no output passes the quality check (``passes_quality``), so that all
outputs vote (the module's stated departure from the paper). A count failure says nothing about where the vertebrae
are; the SMAPE in ``baselines/RESULTS.md`` measures that.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from baselines.aasce import common, keypoint  # noqa: E402
from baselines.api import config_from_dict, load_checkpoint  # noqa: E402
from baselines.data import enhance, read_cases  # noqa: E402

GT_VERTEBRAE = 17
OUTPUTS = ("method-1", "method-2", "method-2-squeezed")
STAGES = ("framing", *OUTPUTS, "fusion")
LABELS = {
    "framing": "framing: crop IoU with the ground-truth crop < 0.5",
    "method-1": "Method-1: vertebra count ≠ 17",
    "method-2": "Method-2: vertebra count ≠ 17",
    "method-2-squeezed": "Method-2 squeezed: vertebra count ≠ 17",
    "fusion": "fusion: training-mean fallback",
    "all-vote": "(not a failure) no output passes the quality check, all vote",
}


def box_iou(a, b) -> float:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    inter = max(0, min(ax1, bx1) - max(ax0, bx0)) * max(0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def replay(checkpoint_path: Path, test_dir: Path, stored_csv: Path | None) -> list[dict]:
    """One record per test case: what each stage of ``keypoint.predict`` returned (same calls, same order)."""
    checkpoint = load_checkpoint(checkpoint_path, task_id=keypoint.TASK, method="keypoint-fusion")
    config = config_from_dict(keypoint.Config, checkpoint["config"])
    device = torch.device("cpu")
    networks = keypoint._Networks(checkpoint, config, device)
    framing = common.Framing(**checkpoint["framing"])
    stored = pd.read_csv(stored_csv, index_col=0) if stored_csv else None
    truth = {case.id: case.landmarks for case in read_cases(test_dir, ground_truth=True)}
    records = []
    for number, case in enumerate(read_cases(test_dir, ground_truth=False)):  # the order predict uses
        rng = np.random.default_rng([config.seed, number])
        image = enhance(case.image, config.enhancement)
        crop_box = (0, 0, image.shape[1], image.shape[0])
        if config.auto_crop:
            start = networks.locate_spine(image, framing) if config.window_search else None
            crop_box = common.refine_crop(networks.rough_points, image, framing, rounds=config.crop_rounds, start=start)
            image = common.crop(image, crop_box)
        landmarks = np.asarray(truth[case.id], dtype=np.float64)
        assert len(landmarks) == 4 * GT_VERTEBRAE, case.id
        truth_box = framing.crop_box(landmarks, case.image.shape)
        groups = networks.patch_points(image, rng)
        vertebra_height = image.shape[0] / (1.0 + framing.top + framing.bottom) / 16.0
        results = {
            "method-1": networks.method_1(image),
            "method-2": keypoint.cluster_vertebrae(
                groups, vertebra_height, config=config, squeeze=False, seed=config.seed
            ),
            "method-2-squeezed": keypoint.cluster_vertebrae(
                groups, vertebra_height, config=config, squeeze=True, seed=config.seed
            ),
        }
        angles = keypoint.fuse(results, quality_ratio=config.quality_ratio, preferred="method-2")
        usable = {name: corners for name, corners in results.items() if len(corners) >= 2}
        passing = [
            name
            for name, corners in usable.items()
            if keypoint.passes_quality(corners, keypoint.select_vertebrae(corners), config.quality_ratio)
        ]
        record = {
            "case": case.id,
            "crop": [int(v) for v in crop_box],
            "truth_crop": [int(v) for v in truth_box],
            "crop_iou": box_iou(crop_box, truth_box),
            **{f"{name}_count": len(results[name]) for name in OUTPUTS},
            "fallback": angles is None,
            "all_vote": bool(usable) and not passing,
            "angles": None if angles is None else [float(a) for a in angles],
        }
        if stored is not None and angles is not None and case.id in stored.index:
            written = np.asarray(common.angle_record(angles)["angles"])
            record["max_abs_diff_vs_csv"] = float(np.max(np.abs(stored.loc[case.id].to_numpy(float)[:3] - written)))
        records.append(record)
        print(
            f"  {case.id}: IoU {record['crop_iou']:.2f}, counts "
            + "/".join(str(record[f"{name}_count"]) for name in OUTPUTS)
            + (", FALLBACK" if angles is None else ""),
            file=sys.stderr,
            flush=True,
        )
    return records


def failures(records: list[dict]) -> dict[str, int]:
    return {
        "framing": sum(r["crop_iou"] < 0.5 for r in records),
        **{name: sum(r[f"{name}_count"] != GT_VERTEBRAE for r in records) for name in OUTPUTS},
        "fusion": sum(r["fallback"] for r in records),
        "all-vote": sum(r["all_vote"] for r in records),
    }


def table(per_seed: dict[int, list[dict]]) -> str:
    seeds = list(per_seed)
    counts = {seed: failures(records) for seed, records in per_seed.items()}
    lines = [
        "| stage: failure criterion | " + " | ".join(f"seed {s}" for s in seeds) + " | total |",
        "| --- | " + " | ".join("---:" for _ in seeds) + " | ---: |",
    ]
    for stage in (*STAGES, "all-vote"):
        cells = [f"{counts[s][stage]}/{len(per_seed[s])}" for s in seeds]
        total = sum(counts[s][stage] for s in seeds)
        lines.append(f"| {LABELS[stage]} | " + " | ".join(cells) + f" | {total}/{sum(map(len, per_seed.values()))} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="baselines_aasce.py --work folder")
    parser.add_argument("--seeds", default="0,1,2", help="training seeds whose checkpoints to replay")
    parser.add_argument("--json", type=Path, default=None, help="write the per-case records here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    per_seed = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        start = time.perf_counter()
        name = f"keypoint-fusion-seed{seed}"
        csv = args.work / f"{name}.csv"
        print(f"== {name}", file=sys.stderr, flush=True)
        per_seed[seed] = replay(args.work / f"{name}.pt", args.work / "test", csv if csv.is_file() else None)
        records = per_seed[seed]
        diffs = [r["max_abs_diff_vs_csv"] for r in records if "max_abs_diff_vs_csv" in r]
        ious = [r["crop_iou"] for r in records]
        print(
            f"seed {seed}: {time.perf_counter() - start:.0f} s; crop IoU min {min(ious):.2f} median "
            f"{np.median(ious):.2f}; "
            + "; ".join(
                f"{n} counts {dict(sorted(Counter(r[f'{n}_count'] for r in records).items()))}" for n in OUTPUTS
            )
            + (f"; max |Δangle| vs {csv.name} {max(diffs):.2e} over {len(diffs)} cases" if diffs else ""),
            flush=True,
        )
    print(table(per_seed), flush=True)
    for name in OUTPUTS:
        overall = Counter(r[f"{name}_count"] for records in per_seed.values() for r in records)
        print(f"{name} vertebra counts over all seeds: {dict(sorted(overall.items()))}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({str(k): v for k, v in per_seed.items()}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
