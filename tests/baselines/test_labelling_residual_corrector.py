"""Vertebra labelling (Bayat et al.): heatmap targets, image and coordinate losses, rotation augmentation,
coordinate mapping, the residual corrector, tiny training and millimetre predictions without ground truth."""

import math
from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from baselines.labelling import METHODS
from baselines.labelling import residual_corrector as rc
from evaluators import formats, tasks
from tests.baselines.ctxr_datasets import build
from tests.conftest import without_ground_truth

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)

torch.set_num_threads(1)
TASK = "vertebra-labelling-xr"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelling")
    return build(TASK, root / "train", cases=4, seed=0), build(TASK, root / "test", cases=2, seed=1, test=True)


def test_methods_and_vertebrae():
    assert {o["corrector"] for _, o in METHODS.values()} == {True, False}
    assert rc.VERTEBRAE[0] == "C1" and rc.VERTEBRAE[-1] == "L5" and len(rc.VERTEBRAE) == 24


def test_gaussian_targets_and_background_channel():
    coords = torch.zeros(1, 24, 2)
    coords[0, 0] = torch.tensor([3.0, 2.0])
    coords[0, 1] = torch.tensor([0.0, 0.0])
    present = torch.zeros(1, 24, dtype=torch.bool)
    present[0, :2] = True
    target = rc.gaussian_targets(coords, present, size=(5, 6), sigma=1.0)
    assert target.shape == (1, 25, 5, 6)
    assert target[0, 1, 2, 3].item() == pytest.approx(1.0)
    assert target[0, 1, 2, 4].item() == pytest.approx(math.exp(-0.5))
    assert target[0, 3:].abs().sum() == 0  # absent vertebrae: empty channels
    torch.testing.assert_close(target[0, 0], -torch.maximum(target[0, 1], target[0, 2]))


def test_image_loss_by_hand():
    # two pixels, two channels: pixel 1 target (1, 0), pixel 2 target (0, 0); prediction all zero
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).view(1, 2, 1, 2)
    predicted = torch.zeros(1, 2, 1, 2)
    p = math.exp(1) / (math.exp(1) + 1)  # softmax of the target at pixel 1
    l2 = 1.0  # summed over pixels and channels
    cross_entropy = (-(p * math.log(0.5) + (1 - p) * math.log(0.5)) - math.log(0.5)) / 2  # mean over pixels
    assert rc.image_loss(predicted, target).item() == pytest.approx(l2 + cross_entropy)


def test_coordinate_loss_is_huber_on_present_points():
    predicted = torch.tensor([[[0.5, 0.0], [10.0, 0.0]]])
    target = torch.zeros(1, 2, 2)
    present = torch.tensor([[True, False]])
    # only (0.5, 0): mean of 0.5·0.25 and 0
    assert rc.coordinate_loss(predicted, target, present).item() == pytest.approx(0.0625)
    both = torch.tensor([[True, True]])
    # 10 -> 10 − 0.5 = 9.5; mean over four numbers: (0.125 + 0 + 9.5 + 0) / 4
    assert rc.coordinate_loss(predicted, target, both).item() == pytest.approx((0.125 + 9.5) / 4)


def test_rotation_moves_points_with_the_image():
    image = torch.zeros(1, 41, 41)
    image[0, 10, 30] = 1.0  # (x=30, y=10)
    coords = torch.tensor([[30.0, 10.0]])
    rotated, moved = rc._rotate(image, coords, 5.0)
    peak = torch.nonzero(rotated[0] == rotated[0].max())[0]
    assert abs(peak[1].item() - moved[0, 0].item()) <= 1 and abs(peak[0].item() - moved[0, 1].item()) <= 1
    # rigid: distance to the centre is kept
    centre = torch.tensor([20.0, 20.0])
    assert (moved[0] - centre).norm().item() == pytest.approx((coords[0] - centre).norm().item(), rel=1e-5)


def test_grid_to_physical_round_trip_with_geometry():
    image = sitk.Image(40, 96, sitk.sitkFloat32)
    image.SetSpacing((0.8, 1.3))
    image.SetOrigin((-12.0, 40.0))
    image.SetDirection((0.0, 1.0, 1.0, 0.0))
    config = rc.PRESETS["tiny"]
    point = [-3.0, 55.5]
    index = np.array(image.TransformPhysicalPointToContinuousIndex(point))
    grid = rc._index_to_grid(index, image, config)
    np.testing.assert_allclose(rc._grid_to_physical(grid, image, config), point, atol=1e-6)


def test_corrector_starts_as_identity():
    corrector = rc.ResidualCorrector(points=24, hidden=8, grid=(48, 16))
    coords = torch.rand(2, 24, 2) * 10
    torch.testing.assert_close(corrector(coords), coords)


@pytest.mark.parametrize("corrector", [False, True])
def test_tiny_training_lowers_the_loss_and_predicts_millimetres(corrector, data, tmp_path):
    config = replace(rc.PRESETS["tiny"], corrector=corrector)
    checkpoint = rc.train(data_dir=data[0], config=config, device="cpu", progress=False)
    losses = checkpoint["losses"]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    blind = without_ground_truth(data[1], tmp_path / "blind")
    predictions = rc.predict(checkpoint=checkpoint, data_dir=blind, config=config, device="cpu", progress=False)
    for case_id, prediction in predictions.items():
        image = sitk.ReadImage(str(data[1] / "inputs" / case_id / "image.nii.gz"))
        corners = [image.TransformIndexToPhysicalPoint(index) for index in
                   ((0, 0), (image.GetSize()[0] - 1, image.GetSize()[1] - 1))]
        low, high = np.min(corners, axis=0) - 50, np.max(corners, axis=0) + 50
        for name, point in prediction["centroids"].items():
            assert name in rc.VERTEBRAE and len(point) == 2
            assert np.all(np.array(point) >= low) and np.all(np.array(point) <= high)
    formats.write_predictions(TASK, predictions, tmp_path / "pred")
    metrics = tasks.evaluate(TASK, predictions=tmp_path / "pred", ground_truth=data[1])
    assert "id_rate" in metrics["aggregates"]
