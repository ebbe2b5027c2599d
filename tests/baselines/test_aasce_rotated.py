import numpy as np
import pytest
import torch

from baselines.aasce import rotated
from baselines.nn.rotated_roi import from_patch, pyramid_levels, pyramid_roi_align, rotated_crops, to_patch
from baselines.nn.spine_targets import box_to_corners, rotated_boxes
from tests.baselines.aasce_runs import assert_loss_falls, assert_valid_angles, train_and_predict

pytestmark = pytest.mark.slow  # trains tiny models of the method (make test runs it; the quick loop does not)


def test_rotated_box_round_trip_through_corners():
    boxes = np.array([[30.0, 40.0, 12.0, 6.0, 0.3], [50.0, 80.0, 10.0, 5.0, -0.6]])
    corners = box_to_corners(boxes).reshape(-1, 2)
    assert np.allclose(rotated_boxes(corners), boxes)


def test_approximate_rotated_iou():
    a = torch.tensor([[10.0, 10.0, 4.0, 2.0, 0.0]])
    same = rotated.approx_rotated_iou(a, a)
    shifted = rotated.approx_rotated_iou(a, torch.tensor([[12.0, 10.0, 4.0, 2.0, 0.0]]))  # half overlap: 4 / 12
    turned = rotated.approx_rotated_iou(a, torch.tensor([[10.0, 10.0, 4.0, 2.0, np.pi / 3]]))
    assert float(same) == pytest.approx(1.0)
    assert float(shifted) == pytest.approx(4 / 12)
    assert float(turned) == pytest.approx(0.5, abs=1e-6)


def test_encode_decode_round_trip_and_nms():
    anchors = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.2], [30.0, 12.0, 8.0, 4.0, -0.3]])
    boxes = torch.tensor([[11.0, 9.0, 9.0, 5.0, 0.35], [29.0, 13.0, 7.0, 3.0, -0.1]])
    assert torch.allclose(rotated.decode(rotated.encode(boxes, anchors), anchors), boxes, atol=1e-5)
    many = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.0], [10.5, 10.0, 8.0, 4.0, 0.0], [40.0, 10.0, 8.0, 4.0, 0.0]])
    kept = rotated.rotated_nms(many, torch.tensor([0.9, 0.8, 0.7]), 0.3)
    assert kept.tolist() == [0, 2]


def test_rotated_roi_align_samples_the_rotated_frame():
    image = torch.zeros(1, 1, 60, 40)
    point = torch.tensor([[[24.0, 33.0]]])
    image[0, 0, 33, 24] = 1.0
    box = torch.tensor([[20.0, 30.0, 10.0, 6.0, 0.4]])
    patch = rotated_crops(image, torch.zeros(1, dtype=torch.long), box, patch=21, context=2.0)
    expected = to_patch(point, box, patch=21, context=2.0)[0, 0]
    peak = torch.nonzero(patch[0, 0] == patch[0, 0].max())[0]
    assert abs(float(peak[1]) - float(expected[0])) <= 1 and abs(float(peak[0]) - float(expected[1])) <= 1
    assert torch.allclose(from_patch(to_patch(point, box, patch=21, context=2.0), box, patch=21, context=2.0), point)


def test_pyramid_levels_follow_the_mask_rcnn_rule():
    strides = [4, 8, 16, 32]
    sides = torch.tensor([10.0, 111.0, 113.0, 224.0, 447.0, 449.0, 3000.0])
    boxes = torch.stack([torch.zeros(7), torch.zeros(7), sides, sides, torch.zeros(7)], dim=1)
    # k = floor(4 + log2(side / 224)), clamped to 2..5; index = k - 2
    assert pyramid_levels(boxes, strides=strides).tolist() == [0, 0, 1, 2, 2, 3, 3]


def test_pyramid_roi_align_samples_each_box_at_its_image_position():
    """Every level holds f(x, y) = 0.5 x + 2 y + 3 at its cells' image positions ((j + 0.5) s - 0.5); bilinear
    sampling of a linear function is exact, so each patch pixel must equal f at `from_patch` of that pixel."""
    strides = [4, 8, 16, 32]
    height, width = 256, 128

    def f(x, y):
        return 0.5 * x + 2.0 * y + 3.0

    features = []
    for stride in strides:
        ys = (torch.arange(height // stride) + 0.5) * stride - 0.5
        xs = (torch.arange(width // stride) + 0.5) * stride - 0.5
        level = f(xs[None, :], ys[:, None])
        features.append(torch.stack([level, -level])[None].repeat(2, 1, 1, 1))  # 2 images, 2 channels
    boxes = torch.tensor([[60.0, 90.0, 20.0, 12.0, 0.3], [64.0, 128.0, 90.0, 150.0, -0.2]])
    owner = torch.tensor([0, 1])
    patch, context = 5, 1.2
    rois = pyramid_roi_align(features, owner, boxes, strides=strides, patch=patch, context=context)
    assert rois.shape == (2, 2, patch, patch)
    assert pyramid_levels(boxes, strides=strides).tolist() == [0, 1]
    grid = torch.stack(torch.meshgrid(torch.arange(patch), torch.arange(patch), indexing="xy"), dim=-1).float()
    points = from_patch(grid.reshape(1, -1, 2).expand(2, -1, -1), boxes, patch=patch, context=context)
    expected = f(points[..., 0], points[..., 1]).reshape(2, patch, patch)
    assert torch.allclose(rois[:, 0], expected, atol=1e-3)
    assert torch.allclose(rois[:, 1], -expected, atol=1e-3)


def test_anchors_cover_levels_ratios_and_angles():
    config = rotated.PRESETS["tiny"]
    anchors = rotated.make_anchors([(4, 2, 3), (8, 1, 2)], config, "cpu")
    k = len(config.ratios) * len(config.anchor_angles)
    assert anchors.shape == ((6 + 2) * k, 5)
    assert np.allclose(np.unique(anchors[:, 4].numpy()), sorted(config.anchor_angles))


def test_vertebra_selection_keeps_the_best_run_of_17_and_drops_off_midline_boxes():
    config = rotated.PRESETS["tiny"]
    ys = np.arange(20) * 10.0
    boxes = np.column_stack([np.full(20, 50.0), ys, np.full(20, 10.0), np.full(20, 5.0), np.zeros(20)])
    scores = np.r_[np.full(3, 0.4), np.full(17, 0.9)]
    boxes = np.vstack([boxes, [200.0, 95.0, 10.0, 5.0, 0.0]])  # far off the midline
    scores = np.r_[scores, 1.0]
    chosen = rotated.select_vertebrae(boxes, scores, config)
    assert chosen.shape == (17, 5)
    assert np.allclose(chosen[:, 1], ys[3:]) and np.all(chosen[:, 0] == 50.0)
    few = rotated.select_vertebrae(boxes[3:12], scores[3:12], config)  # 9 boxes -> interpolated to 17
    assert few.shape == (17, 5) and few[0, 1] == ys[3] and few[-1, 1] == ys[11]


def test_tiny_training_lowers_the_loss_and_predicts_valid_angles(aasce_train, aasce_test, tmp_path):
    stored, table, scores = train_and_predict("rotated-proposals", train_dir=aasce_train, test_dir=aasce_test,
                                              tmp_path=tmp_path)
    assert_loss_falls(stored["losses"])
    assert_loss_falls(stored["corner_losses"])
    assert set(stored["state"]) == {"net"}  # one network: the corner head reads the proposals' pyramid
    assert any(key.startswith("corner_head.") for key in stored["state"]["net"])
    assert stored["isolation"]["low"] < 1.0 < stored["isolation"]["high"]
    assert_valid_angles(table, aasce_test, scores)
