"""Leaderboard ranking as pure functions (no Django). The bootstrap statistics of a leaderboard are in
evaluators.statistics.

Ties share a rank with standard competition ranking ("1224"): an entry's rank is one plus the number of entries
strictly better than it. A missing value (None or NaN) is worse than every number; all missing values share the
last rank. Rank aggregation (mean or median of per-metric ranks) ranks the aggregated values again, lower first.
"""

from __future__ import annotations

import math
import statistics as stdlib_statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from evaluators import statistics

METHODS = ("primary", "mean-rank", "median-rank")
POLICIES = ("best", "latest", "chosen")
DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Entry:
    key: str  # who the row belongs to (a participant or a baseline method)
    submission_pk: int
    created: datetime
    metrics: Mapping[str, float | None]
    chosen: bool = False  # picked by its participant (selection policy "chosen")


def _sort_value(value: float | None, direction: str) -> float:
    """Smaller is better after this mapping; missing becomes +inf (worst)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be 'higher' or 'lower', got {direction!r}")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return math.inf
    return -float(value) if direction == "higher" else float(value)


def competition_ranks(values: Sequence[float | None], *, direction: str) -> list[int]:
    """rank_i = 1 + #{j : v_j strictly better than v_i}; equal values (and all missing values) share a rank. The
    same function ranks the bootstrap replicates (evaluators.statistics.competition_ranks), so a resample and the
    leaderboard can never disagree on ties."""
    if not values:
        _sort_value(None, direction)  # still refuse a bad direction
        return []
    return statistics.competition_ranks(
        values=[math.nan if value is None else float(value) for value in values], direction=direction
    ).tolist()


def select_entries(entries: Sequence[Entry], *, policy: str, metric: str, direction: str) -> list[Entry]:
    """One entry per key: the best by `metric` (ties: the earliest) or the latest (ties: the higher pk). Policy
    "chosen": the best of the entries its participant chose; a key with no chosen entry keeps its best one."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    if policy == "chosen":
        with_choice = {entry.key for entry in entries if entry.chosen}
        entries = [entry for entry in entries if entry.chosen or entry.key not in with_choice]
        policy = "best"
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
    combine = stdlib_statistics.fmean if method == "mean-rank" else stdlib_statistics.median
    scores = [combine([ranks[index] for ranks in per_metric]) for index in range(len(entries))]
    return competition_ranks(scores, direction="lower")


def leaderboard(
    entries: Sequence[Entry], *, metrics: Sequence[str], directions: Mapping[str, str], method: str, policy: str
) -> list[tuple[int, Entry]]:
    """Select one entry per key, rank them and return (rank, entry) sorted by rank, then by submission time."""
    selected = select_entries(entries, policy=policy, metric=metrics[0], direction=directions[metrics[0]])
    ranks = rank_entries(selected, metrics=metrics, directions=directions, method=method)
    return sorted(zip(ranks, selected), key=lambda pair: (pair[0], pair[1].created, pair[1].submission_pk))
