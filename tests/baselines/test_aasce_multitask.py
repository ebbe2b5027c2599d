import numpy as np
import pytest
import torch

from baselines.aasce import multitask
from tests.baselines.aasce_runs import assert_loss_falls, assert_valid_angles, train_and_predict

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)


def test_smape_loss_matches_hand_computed_value():
    truth = torch.tensor([[10.0, 5.0, 5.0], [20.0, 0.0, 0.0]])
    predicted = torch.tensor([[12.0, 5.0, 3.0], [20.0, 0.0, 0.0]])
    # case 1: (2 + 0 + 2) / (22 + 10 + 8) = 0.1; case 2: 0
    assert float(multitask.smape_loss(predicted, truth)) == pytest.approx(0.05, abs=1e-4)


def test_dice_loss_is_zero_for_a_perfect_mask_and_one_for_a_disjoint_mask():
    target = torch.zeros(1, 8, 8)
    target[0, 2:6, 2:6] = 1
    sign = 2 * target - 1  # +1 inside the mask, -1 outside
    perfect = torch.stack([-50 * sign, 50 * sign], dim=1)
    disjoint = torch.stack([50 * sign, -50 * sign], dim=1)
    assert float(multitask.dice_loss(perfect, target, eps=1e-6)) == pytest.approx(0.0, abs=1e-4)
    assert float(multitask.dice_loss(disjoint, target, eps=1e-6)) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("pfa", [True, False])
def test_pyramidal_feature_aggregation_widens_the_angle_head(pfa):
    config = multitask.Config(height=32, width_px=16, width=0.0625, pfa=pfa)
    net = multitask.MultiTaskNet(config)
    channels = net.encoder.channels  # VGG11 stages: 64, 128, 256, 512, 512 scaled by the width
    expected = channels[-1] + (sum(channels[1:-1]) if pfa else 0)
    assert net.angle_head.in_features == expected
    angles, mask = net(torch.rand(2, 1, 32, 16))
    assert angles.shape == (2, 3) and bool((angles >= 0).all())
    assert mask.shape == (2, 2, 32, 16)


def test_tiny_training_lowers_the_loss_and_predicts_valid_angles(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict(
        "multi-task", train_dir=aasce_train, test_dir=aasce_test, tmp_path=tmp_path
    )
    assert_loss_falls(stored["losses"])
    assert_valid_angles(table, aasce_test, scores)


def test_ablation_without_mask_branch_trains(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict(
        "multi-task",
        train_dir=aasce_train,
        test_dir=aasce_test,
        tmp_path=tmp_path,
        overrides={"mask_branch": False, "pfa": False},
    )
    assert stored["config"]["mask_branch"] is False
    assert np.isfinite(stored["losses"]).all()
    assert_valid_angles(table, aasce_test, scores)
