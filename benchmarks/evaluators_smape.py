"""Benchmark: SMAPE over 100,000 cases against the cost of reading the predictions CSV (pandas), and the full
`load_predictions` path. Target (issue 3): SMAPE vectorised, cheaper than reading the CSV.

    nice -n 10 .venv/bin/python benchmarks/evaluators_smape.py [--cases 100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from evaluators import formats, metrics  # noqa: E402


def best_time(function, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=100_000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    case_ids = [f"case_{i:06d}" for i in range(args.cases)]
    truth = rng.uniform(0, 60, (args.cases, 3))
    predicted = np.abs(truth + rng.normal(0, 5, truth.shape))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "predictions.csv"
        formats.write_predictions("aasce-cobb", {c: {"angles": a} for c, a in zip(case_ids, predicted)}, path)
        read_time = best_time(lambda: pd.read_csv(path))
        load_time = best_time(lambda: formats.load_predictions("aasce-cobb", path, case_ids=case_ids), 1)
        smape_time = best_time(lambda: metrics.smape(truth, predicted))
    print(
        f"{args.cases} cases: pandas read_csv {read_time * 1e3:.1f} ms, "
        f"load_predictions (validated) {load_time * 1e3:.0f} ms, "
        f"smape {smape_time * 1e3:.2f} ms"
    )
    print(f"RATIO read_csv / smape: {read_time / smape_time:6.1f}x (target > 1: SMAPE cheaper than reading the CSV)")


if __name__ == "__main__":
    main()
