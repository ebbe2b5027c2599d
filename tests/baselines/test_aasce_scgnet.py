import numpy as np
import pytest
import torch

from baselines.aasce import scgnet
from baselines.nn.spine_targets import boundary_mask
from tests.baselines.aasce_runs import assert_loss_falls, assert_valid_angles, train_and_predict

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)


def _straight_spine():
    # 17 vertebrae 10 px wide (x 10..20), 4 px tall, 1 px discs
    points = []
    for v in range(17):
        top, bottom = 5 + 5 * v, 9 + 5 * v
        points += [(10, top), (20, top), (10, bottom), (20, bottom)]
    return np.array(points, float)


def test_boundary_target_is_the_two_spine_edges():
    mask = boundary_mask(_straight_spine(), (100, 32), width=1)
    rows = mask[10:80]
    assert rows[:, 10].all() and rows[:, 20].all()  # both boundary columns drawn on every row of the spine
    assert not rows[:, 12:19].any()  # nothing inside the spine
    assert mask[:3].sum() == 0 and mask[95:].sum() == 0


def test_boundary_net_uses_pyramid_pooling_and_keeps_the_input_size():
    net = scgnet.BoundaryNet(4)
    assert net.pool.bins == (1, 2, 3, 6)
    out = net(torch.rand(2, 1, 30, 14))
    assert out.shape == (2, 1, 30, 14)
    out.sum().backward()
    assert net.enc1.body[0][0].weight.grad is not None


def test_unknown_input_mode_is_rejected():
    with pytest.raises(ValueError, match="inputs must be one of"):
        scgnet.Config(inputs="mask")


def test_tiny_training_lowers_the_loss_and_predicts_valid_angles(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict("scg-net", train_dir=aasce_train, test_dir=aasce_test, tmp_path=tmp_path)
    assert_loss_falls(stored["losses"])
    assert_loss_falls(stored["segmentation_losses"])
    assert_valid_angles(table, aasce_test, scores)


def test_image_only_ablation(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict("scg-net", train_dir=aasce_train, test_dir=aasce_test,
                                              tmp_path=tmp_path, overrides={"inputs": "image"})
    assert len(stored["segmentation_losses"]) == 0
    assert_valid_angles(table, aasce_test, scores)
