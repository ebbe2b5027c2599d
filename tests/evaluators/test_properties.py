"""Property tests (hypothesis): symmetry, bounds, invariance to case order, perfect predictions."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evaluators import metrics

masks = arrays(np.bool_, st.tuples(st.integers(2, 7), st.integers(2, 7), st.integers(1, 5)))
spacings = st.tuples(*[st.floats(0.3, 3.0)] * 3)
angles = st.integers(1, 20).flatmap(lambda n: arrays(np.float64, (n, 3), elements=st.floats(0, 90)))


@settings(max_examples=40, deadline=None)
@given(masks, masks, spacings)
def test_dice_and_assd_are_symmetric_and_bounded(first, second, spacing):
    second = np.resize(second, first.shape)
    dice = metrics.dice(first, second)
    assert dice == metrics.dice(second, first) and 0.0 <= dice <= 1.0
    forward = metrics.surface_distances(first, second, spacing=spacing)
    backward = metrics.surface_distances(second, first, spacing=spacing)
    np.testing.assert_equal(forward.assd, backward.assd)
    np.testing.assert_equal(forward.hd95, backward.hd95)
    if forward.defined:
        assert forward.assd >= 0 and forward.hd95 >= 0
    self_distance = metrics.surface_distances(first, first, spacing=spacing)
    assert self_distance.assd == 0.0 and metrics.dice(first, first) == 1.0


@settings(max_examples=40, deadline=None)
@given(angles, st.randoms())
def test_smape_perfect_is_zero_bounded_and_order_invariant(truth, random):
    assert metrics.smape(truth, truth) == 0.0
    predicted = truth[::-1].copy()
    value = metrics.smape(truth, predicted)
    assert 0.0 <= value <= 100.0
    order = list(range(len(truth)))
    random.shuffle(order)
    assert np.isclose(metrics.smape(truth[order], predicted[order]), value, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), min_size=2, max_size=40), st.randoms())
def test_auc_bounds_order_invariance_and_reversal(pairs, random):
    labels = np.array([int(label) for label, _ in pairs])
    scores = np.array([score / 5 for _, score in pairs])
    auc = metrics.roc_auc(labels, scores)
    if labels.min() == labels.max():
        assert np.isnan(auc)
        return
    assert 0.0 <= auc <= 1.0
    assert np.isclose(metrics.roc_auc(labels, -scores), 1 - auc)
    order = list(range(len(labels)))
    random.shuffle(order)
    assert np.isclose(metrics.roc_auc(labels[order], scores[order]), auc)
