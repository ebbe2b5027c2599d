"""Benchmark: `roc_auc_ci` (2000 bootstrap replicates, 10,000 vertebrae) against a loop over scikit-learn's
`roc_auc_score` on the very same resamples. Target (issue 3): >= 20x faster, same interval to 1e-9.

    nice -n 10 .venv/bin/python benchmarks/evaluators_auc.py [--n 10000] [--bootstrap 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from tqdm import tqdm  # noqa: E402

from evaluators import metrics, statistics  # noqa: E402


def sklearn_interval(labels, scores, *, n_bootstrap, seed, clusters=None):
    values = []
    chunks = statistics.bootstrap_samples(labels, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters)
    with tqdm(total=n_bootstrap, desc="scikit-learn loop", unit="replicate", leave=False) as progress:
        for chunk in chunks:
            for row in chunk:
                row = row[row >= 0]
                if len(np.unique(labels[row])) == 2:
                    values.append(roc_auc_score(labels[row], scores[row]))
            progress.update(len(chunk))
    return np.percentile(values, [2.5, 97.5])


def compare(name, labels, scores, *, n_bootstrap, clusters=None):
    start = time.perf_counter()
    auc, low, high = metrics.roc_auc_ci(labels, scores, n_bootstrap=n_bootstrap, seed=0, clusters=clusters)
    ours = time.perf_counter() - start
    start = time.perf_counter()
    expected = sklearn_interval(labels, scores, n_bootstrap=n_bootstrap, seed=0, clusters=clusters)
    reference = time.perf_counter() - start
    difference = float(np.max(np.abs(np.array([low, high]) - expected)))
    print(f"{name}: AUC {auc:.4f} CI [{low:.6f}, {high:.6f}]; ours {ours:.2f} s, scikit-learn loop {reference:.1f} s")
    print(
        f"RATIO {name}: {reference / ours:6.1f}x faster (target >= 20x); "
        f"max |interval difference| = {difference:.1e} (target <= 1e-9)"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="vertebrae")
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    labels = (rng.random(args.n) < 0.15).astype(int)
    scores = np.round(1 / (1 + np.exp(-rng.normal(1.5 * labels - 1, 1.0))), 3)  # rounded: many ties
    compare("stratified", labels, scores, n_bootstrap=args.bootstrap)
    patients = np.repeat(np.arange(args.n // 10 + 1), 10)[: args.n]
    compare("clustered by patient", labels, scores, n_bootstrap=args.bootstrap, clusters=patients)


if __name__ == "__main__":
    main()
