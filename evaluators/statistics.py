"""Statistics of a leaderboard: bootstrap confidence intervals, rank stability and pairwise significance.

Pure functions over numpy arrays, keyword-only arguments, no Django. Every bootstrap here resamples *cases* (test
images, patients) with replacement, the unit the test set was drawn in; the same draws serve every entry, so the
entries' replicates are paired and can be ranked against each other (the rank-stability analysis of challengeR,
Wiesenfarth et al. 2021, Sci Rep 11:2369).

Conventions shared by every function:

- ``values`` tables are (entries, cases) float arrays; NaN (or None) marks a missing value (a case the entry has
  no value for). Means ignore missing values; an entry with no value at all has a missing mean.
- ``direction`` is "higher" or "lower": which values are better. Missing values rank worst.
- ``seed`` fixes the draws: ``numpy.random.default_rng(seed).integers(0, n_cases, size=(samples, n_cases))``, one
  row per replicate, so anyone can regenerate the exact resamples (`bootstrap_indices`).
- Percentile intervals use ``numpy.percentile`` (linear interpolation) at (1 - confidence)/2 and (1 + confidence)/2.

The stratified and clustered resampling of ROC analysis (`bootstrap_samples`) lives here too; the AUC-specific
weighted fast path that consumes it stays in `evaluators.metrics.roc`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.stats import rankdata, wilcoxon

DIRECTIONS = ("higher", "lower")
RANK_METHODS = ("primary", "mean-rank", "median-rank")
#: Replicates processed together by the stratified/clustered sampler: bounds memory at chunk x n.
BOOTSTRAP_CHUNK = 100


# ------------------------------------------------------------------------------------------------ input checks


def _direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    return direction


def _confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence}")
    return float(confidence)


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def _table(values: ArrayLike, name: str = "values") -> np.ndarray:
    """(entries, cases) float array, None -> NaN, +-inf -> NaN (not a measurement)."""
    try:
        table = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers or None") from None
    if table.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D (entries, cases) table, got shape {table.shape}")
    table[~np.isfinite(table)] = np.nan
    return table


def _vector(values: ArrayLike, name: str = "values") -> np.ndarray:
    try:
        vector = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected numbers or None") from None
    if vector.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence, got shape {vector.shape}")
    vector[~np.isfinite(vector)] = np.nan
    return vector


# ------------------------------------------------------------------------------------------ case bootstrap draws


def bootstrap_indices(*, n_cases: int, samples: int, seed: int = 0) -> np.ndarray:
    """(samples, n_cases) case positions drawn with replacement: ``default_rng(seed).integers(0, n_cases,
    size=(samples, n_cases))``. Row b is replicate b; every entry is evaluated on the same rows."""
    n_cases = _positive_int(n_cases, "n_cases")
    samples = _positive_int(samples, "samples")
    return np.random.default_rng(seed).integers(0, n_cases, size=(samples, n_cases))


def multiplicities(drawn: np.ndarray, n: int) -> np.ndarray:
    """How often each of the n items occurs in each row of draws: (rows, n) integers (`drawn` is left intact)."""
    drawn = np.asarray(drawn)
    rows = drawn.shape[0]
    offset = drawn.astype(np.int64) + (np.arange(rows, dtype=np.int64) * n)[:, None]
    return np.bincount(offset.ravel(), minlength=rows * n).reshape(rows, n)


def bootstrap_means(*, values: ArrayLike, indices: ArrayLike) -> np.ndarray:
    """(entries, samples) replicate means: for replicate b with case multiplicities w_bc,

        mean_eb = sum_c w_bc v_ec / sum_c w_bc [v_ec not missing]

    i.e. the mean over the drawn cases, each counted as often as it was drawn, missing values left out (NaN when
    every drawn case is missing for that entry)."""
    table = _table(values)
    indices = np.asarray(indices)
    if indices.ndim != 2 or (indices.size and (indices.min() < 0 or indices.max() >= table.shape[1])):
        raise ValueError(f"indices: expected (samples, n) case positions below {table.shape[1]}")
    weights = multiplicities(indices, table.shape[1]).astype(np.float64)
    present = ~np.isnan(table)
    totals = np.where(present, table, 0.0) @ weights.T
    counts = present.astype(np.float64) @ weights.T
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / np.where(counts > 0, counts, 1.0), np.nan)


def bootstrap_set_metric(*, evaluate: Callable[[np.ndarray], float], indices: ArrayLike) -> np.ndarray:
    """(samples,) replicate values of a set-level metric (ROC AUC, a pooled rate): ``evaluate(row)`` receives one
    row of case positions (with repeats: a case drawn twice counts twice) and returns the metric of that resample,
    re-evaluated from scratch. A resample on which the metric is undefined (e.g. one class only) gives NaN and is
    left out of the interval."""
    indices = np.asarray(indices)
    if indices.ndim != 2:
        raise ValueError(f"indices: expected a (samples, n) array of case positions, got shape {indices.shape}")
    if not callable(evaluate):
        raise ValueError("evaluate: expected a callable taking an array of case positions")
    result = np.empty(indices.shape[0])
    for row, drawn in enumerate(indices):
        value = evaluate(drawn)
        result[row] = float(value) if value is not None and math.isfinite(float(value)) else np.nan
    return result


def percentile_interval(*, replicates: ArrayLike, confidence: float = 0.95) -> tuple[float, float]:
    """(lower, upper): the (1-confidence)/2 and (1+confidence)/2 percentiles (linear interpolation) of the finite
    replicates; (NaN, NaN) when there are none."""
    confidence = _confidence(confidence)
    values = _vector(replicates, "replicates")
    values = values[~np.isnan(values)]
    if not values.size:
        return math.nan, math.nan
    tail = (1 - confidence) / 2
    lower, upper = np.percentile(values, [100 * tail, 100 * (1 - tail)])
    return float(lower), float(upper)


def percentile_intervals(*, replicates: ArrayLike, confidence: float = 0.95) -> np.ndarray:
    """(entries, 2) percentile intervals of each row of an (entries, samples) replicate table (`percentile_interval`
    row by row, vectorised)."""
    confidence = _confidence(confidence)
    table = _table(replicates, "replicates")
    tail = (1 - confidence) / 2
    result = np.full((table.shape[0], 2), np.nan)
    missing = np.isnan(table)
    if not missing.any():  # the usual case, one vectorised call (nanpercentile loops over rows)
        return np.percentile(table, [100 * tail, 100 * (1 - tail)], axis=1).T if table.size else result
    finite_rows = ~np.all(missing, axis=1)
    if finite_rows.any():
        result[finite_rows] = np.nanpercentile(table[finite_rows], [100 * tail, 100 * (1 - tail)], axis=1).T
    return result


def mean_ci(
    *, values: ArrayLike, samples: int = 1000, seed: int = 0, confidence: float = 0.95
) -> tuple[float, float, float]:
    """(mean, lower, upper): the mean of one entry's per-case values (missing left out) and its percentile bootstrap
    interval over `samples` case resamples (`bootstrap_indices`, `bootstrap_means`). A constant entry has a
    zero-width interval at its value; no value at all gives NaN everywhere."""
    vector = _vector(values)
    if not vector.size or np.all(np.isnan(vector)):
        return math.nan, math.nan, math.nan
    replicates = bootstrap_means(
        values=vector[None, :], indices=bootstrap_indices(n_cases=vector.size, samples=samples, seed=seed)
    )[0]
    return (float(np.nanmean(vector)), *percentile_interval(replicates=replicates, confidence=confidence))


def set_metric_ci(
    *,
    evaluate: Callable[[np.ndarray], float],
    n_cases: int,
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(estimate, lower, upper) of a set-level metric: `evaluate` on all cases (positions 0..n_cases-1 once each),
    and the percentile interval of `evaluate` re-run on each case resample (`bootstrap_set_metric`)."""
    indices = bootstrap_indices(n_cases=n_cases, samples=samples, seed=seed)
    estimate = float(evaluate(np.arange(n_cases)))
    replicates = bootstrap_set_metric(evaluate=evaluate, indices=indices)
    return (estimate, *percentile_interval(replicates=replicates, confidence=confidence))


# --------------------------------------------------------------------------------- ROC (stratified / clustered)


def class_or_cluster_draws(
    positive: ArrayLike, *, n_bootstrap: int, seed: int, clusters: ArrayLike | None
) -> Iterator[tuple[np.ndarray, ...]]:
    """The raw draws of `bootstrap_samples`, `BOOTSTRAP_CHUNK` replicates (rows) at a time, from
    ``default_rng(seed)``: stratified -> (positive positions, negative positions); clustered -> (cluster positions,)."""
    positive = np.asarray(positive).astype(bool)
    rng = np.random.default_rng(seed)
    n_positive = int(positive.sum())
    n_clusters = 0 if clusters is None else int(np.unique(np.asarray(clusters)).size)
    for start in range(0, n_bootstrap, BOOTSTRAP_CHUNK):
        size = min(BOOTSTRAP_CHUNK, n_bootstrap - start)
        if clusters is None:
            yield (
                rng.integers(0, n_positive, size=(size, n_positive), dtype=np.int32),
                rng.integers(0, positive.size - n_positive, size=(size, positive.size - n_positive), dtype=np.int32),
            )
        else:
            yield (rng.integers(0, n_clusters, size=(size, n_clusters), dtype=np.int32),)


def bootstrap_samples(
    labels: ArrayLike, *, n_bootstrap: int, seed: int = 0, clusters: ArrayLike | None = None
) -> Iterator[np.ndarray]:
    """Yield the bootstrap resamples of a labelled sample as index matrices, `BOOTSTRAP_CHUNK` replicates (rows) at
    a time.

    Stratified (clusters=None): each replicate draws n_+ positives and n_- negatives with replacement, separately.
    Clustered: each replicate draws as many clusters (patients) as there are, with replacement, and keeps all the
    members of every drawn cluster (rows are then padded with -1 to a common length).
    The draws come from `numpy.random.default_rng(seed)` (`class_or_cluster_draws`), so a seed fixes the whole
    sequence; `evaluators.metrics.roc_auc_ci` uses exactly these resamples (as multiplicities).
    """
    positive = np.asarray(labels).astype(bool)
    if clusters is None:
        positive_index, negative_index = np.flatnonzero(positive), np.flatnonzero(~positive)
        for drawn_positive, drawn_negative in class_or_cluster_draws(
            positive, n_bootstrap=n_bootstrap, seed=seed, clusters=None
        ):
            yield np.concatenate([positive_index[drawn_positive], negative_index[drawn_negative]], axis=1)
        return
    _, cluster_of = np.unique(np.asarray(clusters), return_inverse=True)
    members = [np.flatnonzero(cluster_of == c) for c in range(cluster_of.max() + 1)]
    for (drawn,) in class_or_cluster_draws(positive, n_bootstrap=n_bootstrap, seed=seed, clusters=clusters):
        rows = [np.concatenate([members[c] for c in row]) for row in drawn]
        width = max(row.size for row in rows)
        yield np.stack([np.pad(row, (0, width - row.size), constant_values=-1) for row in rows])


# ------------------------------------------------------------------------------------------------------ ranking


def competition_ranks(*, values: ArrayLike, direction: str) -> np.ndarray:
    """Standard competition ranks ("1224") of each column of an (entries, columns) table, or of a 1-D vector:
    rank_i = 1 + #{j : v_j strictly better than v_i}. Equal values share a rank; missing values are worse than
    every number and share the last rank among themselves."""
    keys = np.array(values, dtype=np.float64)
    if _direction(direction) == "higher":
        keys = -keys
    keys[np.isnan(keys)] = np.inf
    ranks: np.ndarray = rankdata(keys, method="min", axis=0).astype(np.int64)
    return ranks


def bootstrap_ranks(
    *, replicates: Sequence[np.ndarray], directions: Sequence[str], method: str = "primary"
) -> np.ndarray:
    """(entries, samples) ranks of every entry in every replicate.

    `replicates`: one (entries, samples) table per leaderboard metric (the primary metric first), all drawn from
    the same resamples; `method` aggregates like the leaderboard: "primary" ranks by the first table, "mean-rank" /
    "median-rank" rank the mean / median of the per-metric ranks again (lower first)."""
    if method not in RANK_METHODS:
        raise ValueError(f"method must be one of {RANK_METHODS}, got {method!r}")
    if not replicates or len(replicates) != len(directions):
        raise ValueError("replicates and directions: expected one direction per replicate table, at least one")
    tables = [_table(table, "replicates") for table in replicates]
    if any(table.shape != tables[0].shape for table in tables):
        raise ValueError("replicates: every table must have the same (entries, samples) shape")
    if method == "primary":
        return competition_ranks(values=tables[0], direction=directions[0])
    per_metric = np.stack([competition_ranks(values=t, direction=d) for t, d in zip(tables, directions)])
    combined = per_metric.mean(axis=0) if method == "mean-rank" else np.median(per_metric, axis=0)
    return competition_ranks(values=combined, direction="lower")


def rank_summary(*, ranks: ArrayLike, reference: ArrayLike) -> list[dict[str, float]]:
    """Per entry (row of an (entries, samples) rank table): the median bootstrap rank, the 2.5th and 97.5th
    percentile ranks (the rank's 95 % interval) and `stability`, the fraction of replicates in which the entry
    holds its `reference` rank (its rank on the full test set; 1.0 = never moves)."""
    table = np.asarray(ranks, dtype=np.float64)
    reference = np.asarray(reference)
    if table.ndim != 2 or reference.shape != (table.shape[0],):
        raise ValueError(
            f"ranks {table.shape} and reference {reference.shape}: expected (entries, samples) and (entries,)"
        )
    if not table.size:
        return []
    low, median, high = np.percentile(table, [2.5, 50, 97.5], axis=1)
    stability = np.mean(table == reference[:, None], axis=1)
    return [
        {"median": float(m), "low": float(lo), "high": float(hi), "stability": float(s)}
        for m, lo, hi, s in zip(median, low, high, stability)
    ]


def rank_counts(*, ranks: ArrayLike) -> list[dict[int, int]]:
    """Per entry, how many replicates gave it each rank: {rank: count} (the blobs of the rank-stability plot)."""
    table = np.asarray(ranks)
    result = []
    for row in table:
        found, counts = np.unique(row, return_counts=True)
        result.append({int(rank): int(count) for rank, count in zip(found, counts)})
    return result


# ------------------------------------------------------------------------------------------------- significance


def wilcoxon_better(*, first: ArrayLike, second: ArrayLike, direction: str) -> float:
    """One-sided p-value of the Wilcoxon signed-rank test that `first` is better than `second` on paired per-case
    values (scipy.stats.wilcoxon). With d_c = first_c - second_c over the cases where both have a value, zero
    differences dropped (Wilcoxon's rule), W+ = the sum of the ranks of |d_c| over the positive d_c; the
    alternative is "d tends to be negative" when lower is better, "positive" when higher is better. Method as
    scipy's "auto" chooses it for this one pair: the exact null distribution for up to 50 differences without ties
    or zeros, all 2^n sign flips for up to 13 with ties or zeros, else the normal approximation with continuity
    correction.
    No non-zero difference (identical entries): p = 1."""
    a, b = _vector(first, "first"), _vector(second, "second")
    if a.shape != b.shape:
        raise ValueError(f"first and second: expected paired values of one length, got {a.size} and {b.size}")
    alternative = "less" if _direction(direction) == "lower" else "greater"
    return float(_signed_rank_p((a - b)[None, :], alternative=alternative)[0])


def _signed_rank_p(differences: np.ndarray, *, alternative: str) -> np.ndarray:
    """One-sided signed-rank p-value of each row of paired differences (NaN = no pair), each row exactly as
    `scipy.stats.wilcoxon(row, alternative=..., zero_method="wilcox")` alone would give it. Rows that share a
    length and a method are computed together (the significance map tests hundreds of pairs)."""
    result = np.ones(differences.shape[0])
    groups: dict[tuple[int, str], list[int]] = {}
    for index, row in enumerate(differences):
        d = row[~np.isnan(row)]
        nonzero = np.abs(d[d != 0])
        if not nonzero.size:
            continue  # identical on every paired case: no evidence either way
        ties = np.unique(nonzero).size < nonzero.size
        if d.size > 50:
            method = "asymptotic"
        elif not ties and nonzero.size == d.size:
            method = "exact"
        elif d.size <= 13:
            method = "sign-flips"
        else:
            method = "asymptotic"
        key = (nonzero.size, method) if method == "sign-flips" else (d.size, method)
        groups.setdefault(key, []).append(index)
    for (size, method), rows in groups.items():
        if method == "sign-flips":
            result[rows] = _sign_flip_p([differences[i][~np.isnan(differences[i])] for i in rows], size, alternative)
            continue
        table = np.stack([differences[i][~np.isnan(differences[i])] for i in rows])
        result[rows] = wilcoxon(table, axis=1, alternative=alternative, zero_method="wilcox", method=method).pvalue
    return result


def _sign_flip_p(rows: list[np.ndarray], m: int, alternative: str) -> np.ndarray:
    """Exact permutation p-values for short rows with ties or zeros (what scipy's "auto" does for n <= 13, there
    through a generic permutation test that is far slower): W+ = the sum of the mid-ranks of the positive
    non-zero |d|, compared with its value under all 2^m sign patterns of the m non-zero differences (zeros, which
    a sign flip leaves as they are, change no proportion); ties within scipy's relative tolerance of 100 eps."""
    ranks = np.stack([rankdata(np.abs(d[d != 0])) for d in rows])  # (rows, m)
    observed = np.array([r[d[d != 0] > 0].sum() for r, d in zip(ranks, rows)])
    patterns = (np.arange(2**m)[:, None] >> np.arange(m)) & 1  # (2^m, m): which differences are positive
    null = patterns @ ranks.T  # (2^m, rows)
    gamma = np.abs(np.finfo(np.float64).eps * 100 * observed)
    extreme = null <= observed + gamma if alternative == "less" else null >= observed - gamma
    p_values: np.ndarray = np.count_nonzero(extreme, axis=0) / 2**m
    return p_values


def holm(*, p_values: ArrayLike) -> np.ndarray:
    """Holm's step-down adjusted p-values, same shape and order as `p_values` (NaN entries are not tests and stay
    NaN). With the m finite p-values sorted p_(1) <= ... <= p_(m):

        adjusted_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))

    Rejecting where adjusted < alpha controls the family-wise error rate at alpha."""
    raw = np.array(p_values, dtype=np.float64)
    flat = raw.ravel()
    tested = np.flatnonzero(~np.isnan(flat))
    if np.any((flat[tested] < 0) | (flat[tested] > 1)):
        raise ValueError("p_values: every p-value must lie in [0, 1]")
    order = tested[np.argsort(flat[tested], kind="stable")]
    m = order.size
    scaled = np.minimum(1.0, (m - np.arange(m)) * flat[order])
    adjusted = flat.copy()
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.reshape(raw.shape)


def significance_matrix(*, values: ArrayLike, direction: str, alpha: float = 0.05) -> dict[str, Any]:
    """Pairwise one-sided Wilcoxon signed-rank tests among k entries (rows of an (entries, cases) table of paired
    per-case values, usually the top of the leaderboard), Holm-corrected over all k(k-1) ordered pairs.

    Returns {"p": k x k adjusted p-values (p[i][j]: "i better than j"; None on the diagonal), "better": k x k
    booleans (adjusted p < alpha), "wins": per entry, how many others it is significantly better than}."""
    table = _table(values)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: expected a number in (0, 1), got {alpha}")
    k = table.shape[0]
    raw = np.full((k, k), np.nan)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    if pairs:
        differences = np.stack([table[i] - table[j] for i, j in pairs])
        better_first, better_second = ("less", "greater") if _direction(direction) == "lower" else ("greater", "less")
        first = _signed_rank_p(differences, alternative=better_first)  # i better than j
        second = _signed_rank_p(differences, alternative=better_second)  # j better than i
        for (i, j), p_ij, p_ji in zip(pairs, first, second):
            raw[i, j], raw[j, i] = p_ij, p_ji
    adjusted = holm(p_values=raw)
    better = (adjusted < alpha) & ~np.isnan(adjusted)
    return {
        "p": [[None if i == j else float(adjusted[i, j]) for j in range(k)] for i in range(k)],
        "better": better.tolist(),
        "wins": better.sum(axis=1).astype(int).tolist(),
    }
