"""Ranking as pure functions, table-driven against hand-worked leaderboards."""

from datetime import datetime, timedelta

import pytest

from spinebench.leaderboards.ranking import Entry, competition_ranks, leaderboard, rank_entries, select_entries

T0 = datetime(2026, 1, 1)


def entry(key, pk, *, minutes=0, **metrics):
    return Entry(key=key, submission_pk=pk, created=T0 + timedelta(minutes=minutes), metrics=metrics)


@pytest.mark.parametrize(
    ("values", "direction", "expected"),
    [
        ([10.0, 20.0, 30.0], "lower", [1, 2, 3]),
        ([10.0, 20.0, 30.0], "higher", [3, 2, 1]),
        ([5.0, 5.0, 7.0, 1.0], "lower", [2, 2, 4, 1]),  # ties share a rank, the next rank is skipped
        ([0.9, None, 0.9, float("nan")], "higher", [1, 3, 1, 3]),  # missing values share the last rank
        ([], "lower", []),
    ],
)
def test_competition_ranks(values, direction, expected):
    assert competition_ranks(values, direction=direction) == expected


def test_unknown_direction_is_refused():
    with pytest.raises(ValueError, match="direction"):
        competition_ranks([1.0], direction="up")


def test_mean_and_median_of_ranks_hand_worked():
    # metric a (lower better): ranks A1 B2 C3 D4; metric b (higher): ranks A3 B1 C2 D4; metric c (lower): A2 B3 C1 D4
    entries = [
        entry("A", 1, a=1.0, b=5.0, c=2.0),
        entry("B", 2, a=2.0, b=9.0, c=3.0),
        entry("C", 3, a=3.0, b=7.0, c=1.0),
        entry("D", 4, a=4.0, b=1.0, c=4.0),
    ]
    directions = {"a": "lower", "b": "higher", "c": "lower"}
    # means: A 2, B 2, C 2, D 4 -> A, B, C tie at rank 1
    assert rank_entries(entries, metrics=["a", "b", "c"], directions=directions, method="mean-rank") == [1, 1, 1, 4]
    # medians: A median(1,3,2)=2, B median(2,1,3)=2, C median(3,2,1)=2, D 4
    assert rank_entries(entries, metrics=["a", "b", "c"], directions=directions, method="median-rank") == [1, 1, 1, 4]
    # with two metrics only: means A 2, B 1.5, C 2.5, D 4
    assert rank_entries(entries, metrics=["a", "b"], directions=directions, method="mean-rank") == [2, 1, 3, 4]
    assert rank_entries(entries, metrics=["b", "a"], directions=directions, method="primary") == [3, 1, 2, 4]


def test_median_differs_from_mean():
    # ranks on a/b/c: X (1, 1, 4) mean 2 median 1; Y (2, 2, 1) mean 1.67 median 2
    entries = [
        entry("X", 1, a=1.0, b=1.0, c=9.0),
        entry("Y", 2, a=2.0, b=2.0, c=1.0),
        entry("Z", 3, a=3.0, b=3.0, c=2.0),
        entry("W", 4, a=4.0, b=4.0, c=3.0),
    ]
    directions = {"a": "lower", "b": "lower", "c": "lower"}
    assert rank_entries(entries, metrics=["a", "b", "c"], directions=directions, method="mean-rank") == [2, 1, 3, 4]
    assert rank_entries(entries, metrics=["a", "b", "c"], directions=directions, method="median-rank") == [1, 2, 3, 4]


def test_best_and_latest_per_participant():
    entries = [
        entry("A", 1, minutes=0, smape=10.0),
        entry("A", 2, minutes=5, smape=12.0),
        entry("B", 3, minutes=1, smape=11.0),
    ]
    best = select_entries(entries, policy="best", metric="smape", direction="lower")
    latest = select_entries(entries, policy="latest", metric="smape", direction="lower")
    assert sorted(e.submission_pk for e in best) == [1, 3]
    assert sorted(e.submission_pk for e in latest) == [2, 3]
    board = leaderboard(entries, metrics=["smape"], directions={"smape": "lower"}, method="primary", policy="latest")
    assert [(rank, e.key) for rank, e in board] == [(1, "B"), (2, "A")]


def test_best_tie_keeps_the_earliest_submission():
    entries = [entry("A", 7, minutes=3, smape=10.0), entry("A", 4, minutes=1, smape=10.0)]
    assert [e.submission_pk for e in select_entries(entries, policy="best", metric="smape", direction="lower")] == [4]


def test_bad_method_and_policy():
    with pytest.raises(ValueError, match="method"):
        rank_entries([entry("A", 1, a=1.0)], metrics=["a"], directions={"a": "lower"}, method="sum")
    with pytest.raises(ValueError, match="policy"):
        select_entries([], policy="worst", metric="a", direction="lower")
