"""Leaderboard ranking as pure functions (no Django).

Ties share a rank with standard competition ranking ("1224"): an entry's rank is one plus the number of entries
strictly better than it. A missing value (None or NaN) is worse than every number; all missing values share the
last rank. Rank aggregation (mean or median of per-metric ranks) ranks the aggregated values again, lower first.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

METHODS = ("primary", "mean-rank", "median-rank")
POLICIES = ("best", "latest")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Entry:
    key: str  # who the row belongs to (a participant or a baseline method)
    submission_pk: int
    created: datetime
    metrics: Mapping[str, float | None]


def _sort_value(value: float | None, direction: str) -> float:
    """Smaller is better after this mapping; missing becomes +inf (worst)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return -float(value) if direction == "higher" else float(value)


def competition_ranks(values: Sequence[float | None], *, direction: str) -> list[int]:
    """rank_i = 1 + #{j : v_j strictly better than v_i}; equal values (and all missing values) share a rank."""
    keys = [_sort_value(value, direction) for value in values]
    ordered = sorted(keys)
    first_position: dict[float, int] = {}
    for position, key in enumerate(ordered):
        first_position.setdefault(key, position)
    return [first_position[key] + 1 for key in keys]


def select_entries(entries: Sequence[Entry], *, policy: str, metric: str, direction: str) -> list[Entry]:
    """One entry per key: the best by `metric` (ties: the earliest) or the latest (ties: the higher pk)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    chosen: dict[str, Entry] = {}
    for entry in entries:
        current = chosen.get(entry.key)
        if current is None:
            chosen[entry.key] = entry
            continue
        if policy == "latest":
            better = (entry.created, entry.submission_pk) > (current.created, current.submission_pk)
        else:
            mine = (_sort_value(entry.metrics.get(metric), direction), entry.created, entry.submission_pk)
            theirs = (_sort_value(current.metrics.get(metric), direction), current.created, current.submission_pk)
            better = mine < theirs
        if better:
            chosen[entry.key] = entry
    return list(chosen.values())


def rank_entries(
    entries: Sequence[Entry], *, metrics: Sequence[str], directions: Mapping[str, str], method: str
) -> list[int]:
    """Rank of each entry (in input order). `metrics[0]` is the primary metric; the rank methods use all of them."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if not metrics:
        raise ValueError("metrics must name at least the primary metric")
    if not entries:
        return []
    if method == "primary":
        return competition_ranks([entry.metrics.get(metrics[0]) for entry in entries], direction=directions[metrics[0]])
    per_metric = [
        competition_ranks([entry.metrics.get(key) for entry in entries], direction=directions[key]) for key in metrics
    ]
    combine = statistics.fmean if method == "mean-rank" else statistics.median
    scores = [combine([ranks[index] for ranks in per_metric]) for index in range(len(entries))]
    return competition_ranks(scores, direction="lower")


def leaderboard(
    entries: Sequence[Entry], *, metrics: Sequence[str], directions: Mapping[str, str], method: str, policy: str
) -> list[tuple[int, Entry]]:
    """Select one entry per key, rank them and return (rank, entry) sorted by rank, then by submission time."""
    selected = select_entries(entries, policy=policy, metric=metrics[0], direction=directions[metrics[0]])
    ranks = rank_entries(selected, metrics=metrics, directions=directions, method=method)
    return sorted(zip(ranks, selected), key=lambda pair: (pair[0], pair[1].created, pair[1].submission_pk))


def bootstrap_rank_stability(
    per_case: Mapping[str, Mapping[str, float | None]], *, direction: str, samples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """How stable each entry's rank is under resampling of the test cases.

    `per_case`: entry key -> {case_id: value of the ranking metric}, for a metric whose aggregate is the mean over
    cases. Each of `samples` bootstrap draws picks N cases with replacement (the same draw for every entry), ranks
    the entries by their mean over the drawn cases (competition ranking, missing values worst), and the result is, per
    entry, the fraction of draws in which its rank equals its rank on the full test set (1.0 = never moves)."""
    import numpy as np

    keys = list(per_case)
    cases = sorted({case for values in per_case.values() for case in values})
    if not keys or not cases:
        return {}
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    sign = -1.0 if direction == "higher" else 1.0

    def cell(value) -> float:
        return np.inf if value is None or not math.isfinite(value) else sign * float(value)

    table = np.array([[cell(per_case[key].get(case)) for case in cases] for key in keys])  # smaller = better

    def ranks(columns) -> np.ndarray:
        means = table[:, columns].mean(axis=1)
        return np.array(competition_ranks([None if np.isinf(m) else float(m) for m in means], direction="lower"))

    full = ranks(np.arange(len(cases)))
    rng = np.random.default_rng(seed)
    kept = np.zeros(len(keys))
    for _ in range(samples):
        kept += ranks(rng.integers(0, len(cases), size=len(cases))) == full
    return {key: float(kept[index] / samples) for index, key in enumerate(keys)}
