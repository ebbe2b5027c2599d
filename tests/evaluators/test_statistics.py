"""evaluators.statistics against hand-worked cases, plain-loop re-derivations (no scipy/statsmodels inside the
reference) and seeded exact values; hypothesis properties for the invariants."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluators import metrics, statistics

# ---------------------------------------------------------------------------------------------- bootstrap of means


def loop_replicate_means(values, *, samples, seed):
    """Reference: draw exactly as documented and average in a Python loop, skipping missing values."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(values), size=(samples, len(values)))
    result = []
    for row in drawn:
        picked = [values[i] for i in row if values[i] is not None and not math.isnan(values[i])]
        result.append(sum(picked) / len(picked) if picked else math.nan)
    return result


def test_mean_ci_equals_a_plain_loop_over_the_documented_draws():
    values = [3.0, 1.5, None, 7.25, 2.0, 9.5, 4.0]
    mean, low, high = statistics.mean_ci(values=values, samples=400, seed=11)
    replicates = loop_replicate_means(values, samples=400, seed=11)
    finite = sorted(v for v in replicates if not math.isnan(v))

    def percentile(q):  # linear interpolation between order statistics, written out
        position = q / 100 * (len(finite) - 1)
        below = math.floor(position)
        return finite[below] + (position - below) * (finite[min(below + 1, len(finite) - 1)] - finite[below])

    assert mean == pytest.approx((3.0 + 1.5 + 7.25 + 2.0 + 9.5 + 4.0) / 6)
    assert low == pytest.approx(percentile(2.5), abs=1e-12)
    assert high == pytest.approx(percentile(97.5), abs=1e-12)


def test_two_case_hand_worked_distribution():
    # Cases (0, 10): a resample of two is {0,0} (1/4) -> 0, {10,10} (1/4) -> 10, mixed (1/2) -> 5.
    replicates = statistics.bootstrap_means(
        values=[[0.0, 10.0]], indices=statistics.bootstrap_indices(n_cases=2, samples=20000, seed=3)
    )[0]
    assert set(np.unique(replicates)) == {0.0, 5.0, 10.0}
    assert np.mean(replicates == 5.0) == pytest.approx(0.5, abs=0.02)
    low, high = statistics.percentile_interval(replicates=replicates)
    assert (low, high) == (0.0, 10.0)


def test_seeded_values_are_fixed():
    indices = statistics.bootstrap_indices(n_cases=4, samples=3, seed=0)
    np.testing.assert_array_equal(indices, np.random.default_rng(0).integers(0, 4, size=(3, 4)))
    means = statistics.bootstrap_means(values=[[1.0, 2.0, 3.0, 4.0]], indices=indices)[0]
    np.testing.assert_allclose(means, [np.mean(np.array([1.0, 2.0, 3.0, 4.0])[row]) for row in indices])


def test_missing_and_empty_entries():
    assert all(math.isnan(x) for x in statistics.mean_ci(values=[None, None]))
    assert all(math.isnan(x) for x in statistics.mean_ci(values=[]))
    table = statistics.bootstrap_means(values=[[1.0, None], [None, None]], indices=[[0, 1], [1, 1]])
    assert table[0, 0] == 1.0 and math.isnan(table[0, 1]) and np.all(np.isnan(table[1]))


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: statistics.bootstrap_indices(n_cases=0, samples=5), "n_cases"),
        (lambda: statistics.bootstrap_indices(n_cases=3, samples=1.5), "samples"),
        (lambda: statistics.mean_ci(values=[[1.0]]), "1-D"),
        (lambda: statistics.mean_ci(values=["a"]), "numbers"),
        (lambda: statistics.mean_ci(values=[1.0], confidence=1.0), "confidence"),
        (lambda: statistics.bootstrap_means(values=[1.0, 2.0], indices=[[0]]), "2-D"),
        (lambda: statistics.bootstrap_means(values=[[1.0, 2.0]], indices=[[0, 2]]), "indices"),
        (lambda: statistics.competition_ranks(values=[1.0], direction="up"), "direction"),
        (lambda: statistics.holm(p_values=[0.5, 1.5]), "p-value"),
        (lambda: statistics.wilcoxon_better(first=[1.0], second=[1.0, 2.0], direction="lower"), "paired"),
        (
            lambda: statistics.bootstrap_ranks(replicates=[np.zeros((2, 3))], directions=["lower"], method="sum"),
            "method",
        ),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=60, deadline=None)
@given(value=st.floats(-1e6, 1e6, allow_nan=False), n=st.integers(1, 30), seed=st.integers(0, 2**32 - 1))
def test_constant_data_interval_is_the_value(value, n, seed):
    mean, low, high = statistics.mean_ci(values=[value] * n, samples=50, seed=seed)
    assert low == pytest.approx(value, rel=1e-12, abs=1e-9) and high == pytest.approx(value, rel=1e-12, abs=1e-9)
    assert low <= mean + 1e-9 and mean - 1e-9 <= high


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=25), seed=st.integers(0, 1000))
def test_interval_lies_within_the_data_range(values, seed):
    _, low, high = statistics.mean_ci(values=values, samples=100, seed=seed)
    assert min(values) - 1e-9 <= low <= high <= max(values) + 1e-9


# ------------------------------------------------------------------------------------------- set-level metrics


def test_set_metric_ci_reevaluates_every_resample():
    rng = np.random.default_rng(5)
    labels = np.array([0, 1] * 20)
    scores = rng.normal(labels * 1.0, 1.0)
    estimate, low, high = statistics.set_metric_ci(
        evaluate=lambda rows: metrics.roc_auc(labels[rows], scores[rows]), n_cases=labels.size, samples=300, seed=2
    )
    expected = []
    for row in np.random.default_rng(2).integers(0, labels.size, size=(300, labels.size)):
        expected.append(metrics.roc_auc(labels[row], scores[row]))  # a one-class resample is NaN and left out
    expected = np.array(expected)
    expected = expected[~np.isnan(expected)]
    assert estimate == metrics.roc_auc(labels, scores)
    np.testing.assert_allclose([low, high], np.percentile(expected, [2.5, 97.5]), atol=1e-12)
    assert low < estimate < high


def test_set_metric_with_no_defined_resample():
    estimate, low, high = statistics.set_metric_ci(evaluate=lambda rows: math.nan, n_cases=3, samples=10)
    assert math.isnan(estimate) and math.isnan(low) and math.isnan(high)


# -------------------------------------------------------------------------------------------------------- ranks


def test_competition_ranks_hand_worked():
    assert statistics.competition_ranks(values=[0.9, 0.7, 0.9, None, 0.1], direction="higher").tolist() == [
        1,
        3,
        1,
        5,
        4,
    ]
    assert statistics.competition_ranks(values=[3.0, float("nan"), 1.0, float("nan")], direction="lower").tolist() == [
        2,
        3,
        1,
        3,
    ]
    columns = statistics.competition_ranks(values=[[1.0, 5.0], [2.0, 5.0]], direction="lower")
    assert columns.tolist() == [[1, 1], [2, 1]]


def test_rank_distribution_hand_worked():
    # A = (0, 10), B = (5, 5), lower better: full means tie (rank 1 both). Draws of two cases: both case 1 (p 1/4):
    # A 0 < B 5, B drops; both case 2 (1/4): A drops; mixed (1/2): tie. So each keeps rank 1 with p = 3/4.
    values = [[0.0, 10.0], [5.0, 5.0]]
    replicates = statistics.bootstrap_means(
        values=values, indices=statistics.bootstrap_indices(n_cases=2, samples=4000, seed=1)
    )
    ranks = statistics.bootstrap_ranks(replicates=[replicates], directions=["lower"])
    summary = statistics.rank_summary(ranks=ranks, reference=[1, 1])
    assert summary[0]["stability"] == pytest.approx(0.75, abs=0.03)
    assert summary[1]["stability"] == pytest.approx(0.75, abs=0.03)
    assert summary[0]["low"] == 1 and summary[0]["high"] == 2
    counts = statistics.rank_counts(ranks=ranks)
    assert set(counts[0]) == {1, 2} and sum(counts[0].values()) == 4000


def test_dominant_entry_never_moves():
    replicates = statistics.bootstrap_means(
        values=[[0.9, 0.8], [0.1, 0.2]], indices=statistics.bootstrap_indices(n_cases=2, samples=200, seed=0)
    )
    ranks = statistics.bootstrap_ranks(replicates=[replicates], directions=["higher"])
    assert [s["stability"] for s in statistics.rank_summary(ranks=ranks, reference=[1, 2])] == [1.0, 1.0]


def test_mean_rank_method_reranks_the_mean_of_metric_ranks():
    # one replicate column; metric a ranks (1, 2, 3), metric b ranks (3, 1, 2) -> means (2, 1.5, 2.5) -> ranks (2, 1, 3)
    a = np.array([[1.0], [2.0], [3.0]])
    b = np.array([[0.1], [0.9], [0.5]])
    ranks = statistics.bootstrap_ranks(replicates=[a, b], directions=["lower", "higher"], method="mean-rank")
    assert ranks[:, 0].tolist() == [2, 1, 3]
    median = statistics.bootstrap_ranks(
        replicates=[a, b, a], directions=["lower", "higher", "lower"], method="median-rank"
    )
    assert median[:, 0].tolist() == [1, 2, 3]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), entries=st.integers(2, 6), cases=st.integers(2, 8))
def test_rank_distribution_is_permutation_invariant(data, entries, cases):
    values = np.array(
        data.draw(st.lists(st.floats(0, 10, allow_nan=False), min_size=entries * cases, max_size=entries * cases))
    ).reshape(entries, cases)
    order = np.array(data.draw(st.permutations(range(entries))))
    indices = statistics.bootstrap_indices(n_cases=cases, samples=30, seed=4)
    ranks = statistics.bootstrap_ranks(
        replicates=[statistics.bootstrap_means(values=values, indices=indices)], directions=["lower"]
    )
    shuffled = statistics.bootstrap_ranks(
        replicates=[statistics.bootstrap_means(values=values[order], indices=indices)], directions=["lower"]
    )
    np.testing.assert_array_equal(shuffled, ranks[order])
    # permuting the cases (and the draws with them) changes nothing either
    case_order = np.array(data.draw(st.permutations(range(cases))))
    inverse = np.argsort(case_order)
    moved = statistics.bootstrap_means(values=values[:, case_order], indices=inverse[indices])
    np.testing.assert_allclose(
        moved, statistics.bootstrap_means(values=values, indices=indices), rtol=1e-12, atol=1e-12
    )


# ------------------------------------------------------------------------------------------------- significance


def exact_signed_rank_p(differences, *, alternative):
    """Reference: enumerate all 2^n sign patterns of the ranks of |d| (no ties, no zeros) and count how often
    W+ is at most (alternative 'less') or at least ('greater') the observed W+."""
    magnitudes = np.abs(differences)
    ranks = np.argsort(np.argsort(magnitudes)) + 1
    observed = sum(int(r) for r, d in zip(ranks, differences) if d > 0)
    count = 0
    total = 0
    for signs in itertools.product((0, 1), repeat=len(differences)):
        w = sum(int(r) for r, s in zip(ranks, signs) if s)
        total += 1
        count += w <= observed if alternative == "less" else w >= observed
    return count / total


def test_wilcoxon_matches_the_enumerated_exact_distribution():
    first = np.array([1.2, 3.4, 2.2, 5.9, 4.1, 0.3, 2.8])
    second = np.array([2.0, 3.9, 4.3, 6.0, 4.05, 1.6, 6.1])  # differences distinct, non-zero
    differences = first - second
    p_lower = statistics.wilcoxon_better(first=first, second=second, direction="lower")
    assert p_lower == pytest.approx(exact_signed_rank_p(differences, alternative="less"), abs=1e-12)
    p_higher = statistics.wilcoxon_better(first=first, second=second, direction="higher")
    assert p_higher == pytest.approx(exact_signed_rank_p(differences, alternative="greater"), abs=1e-12)
    # hand check: W+ = rank of |+0.05| = 1 of 1..7 -> P(W+ <= 1) = 2/128
    assert p_lower == pytest.approx(2 / 128) and p_higher == pytest.approx(127 / 128)


def test_wilcoxon_identical_entries_and_missing_pairs():
    assert statistics.wilcoxon_better(first=[1.0, 2.0], second=[1.0, 2.0], direction="lower") == 1.0
    with_gap = statistics.wilcoxon_better(
        first=[1.0, None, 2.0, 0.5, 0.2], second=[2.0, 0.0, 3.5, 3.0, 4.2], direction="lower"
    )
    assert with_gap == pytest.approx(exact_signed_rank_p(np.array([-1.0, -1.5, -2.5, -4.0]), alternative="less"))


def test_holm_hand_worked():
    # sorted 0.01, 0.02, 0.03, 0.5 (m = 4) -> 0.04, 0.06, 0.06 (max with 2*0.03), 0.5
    adjusted = statistics.holm(p_values=[0.03, 0.5, 0.01, 0.02])
    np.testing.assert_allclose(adjusted, [0.06, 0.5, 0.04, 0.06])
    matrix = statistics.holm(p_values=[[np.nan, 0.2], [0.9, np.nan]])
    assert np.isnan(matrix[0, 0]) and matrix[0, 1] == pytest.approx(0.4) and matrix[1, 0] == pytest.approx(0.9)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0, 1, allow_nan=False), min_size=1, max_size=30))
def test_holm_is_monotone_and_conservative(p_values):
    adjusted = statistics.holm(p_values=p_values)
    raw = np.array(p_values)
    assert np.all(adjusted >= raw - 1e-15) and np.all(adjusted <= 1.0)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-15)  # same order as the raw p-values
    assert np.all(adjusted <= np.minimum(1.0, raw * len(raw)) + 1e-15)  # never worse than Bonferroni


def test_significance_matrix_finds_the_clearly_better_entry():
    rng = np.random.default_rng(0)
    base = rng.uniform(10, 20, size=25)
    values = np.stack([base - 5, base, base + rng.normal(0, 0.01, 25)])  # lower better: row 0 clearly best
    result = statistics.significance_matrix(values=values, direction="lower")
    assert result["better"][0][1] and result["better"][0][2]
    assert not result["better"][1][0] and not result["better"][1][2] and not result["better"][2][1]
    assert result["p"][0][0] is None and result["wins"] == [2, 0, 0]
    raw = statistics.wilcoxon_better(first=values[0], second=values[1], direction="lower")
    assert result["p"][0][1] >= raw


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(3, 70), k=st.integers(2, 5), decimals=st.integers(0, 2))
def test_significance_matrix_equals_pairwise_tests_with_holm(seed, n, k, decimals):
    """The vectorised matrix against one scipy call per ordered pair (ties, zeros and missing values included)."""
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(0, 1, size=(k, n)) + np.arange(k)[:, None] * 0.3, decimals)
    values[0, : n // 4] = values[1, : n // 4]  # zero differences
    if n > 5:
        values[k - 1, 2] = np.nan
    result = statistics.significance_matrix(values=values, direction="higher")
    raw = np.full((k, k), np.nan)
    for i in range(k):
        for j in range(k):
            if i != j:
                d = values[i] - values[j]
                d = d[~np.isnan(d)]
                raw[i, j] = (
                    1.0
                    if not np.any(d != 0)
                    else __import__("scipy").stats.wilcoxon(d, alternative="greater", zero_method="wilcox").pvalue
                )
    expected = statistics.holm(p_values=raw)
    got = np.array([[np.nan if p is None else p for p in row] for row in result["p"]])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("alternative_direction", ["lower", "higher"])
def test_short_rows_with_ties_and_zeros_match_scipys_permutation_test(alternative_direction):
    from scipy.stats import wilcoxon

    rows = [
        [1, 1, -2, 0, 3, 3, -1, 2, 0, 1],
        [2, 2, 2, -2, 1, 0],
        [0.5, -0.5, 0.5, 1.0, 1.5, 1.5, 2.0, -2.0, 0.0, 3.0, 1.0, 1.0],
    ]
    alternative = "less" if alternative_direction == "lower" else "greater"
    for row in rows:
        expected = wilcoxon(row, alternative=alternative, zero_method="wilcox").pvalue
        got = statistics.wilcoxon_better(first=row, second=[0.0] * len(row), direction=alternative_direction)
        assert got == pytest.approx(expected, rel=1e-12)
