"""Each 2D building block on its own: output shapes, gradients reaching the input layer, hand-worked values."""

import numpy as np
import pytest
import torch

from baselines.nn import detection
from baselines.nn.backbones import classifier, feature_backbone, small_densenet
from baselines.nn.grl import DomainDiscriminator, grad_reverse
from baselines.nn.heatmaps import SimpleBaseline, heatmap_argmax, soft_argmax2d
from baselines.nn.hrnet import HRNet
from baselines.nn.pyramid import DilatedPyramid, PSPNet, PyramidPooling
from baselines.nn.training import GradScalerStep, batches
from baselines.nn.unet import UNet, residual_unet

torch.set_num_threads(1)


def _first_conv_grad(model: torch.nn.Module) -> torch.Tensor:
    return next(p for p in model.parameters() if p.ndim == 4).grad


@pytest.mark.parametrize(
    "build", [lambda: UNet(depth=3, base_channels=4), lambda: residual_unet(depth=3, base_channels=4)]
)
def test_unet_keeps_odd_sizes_and_backpropagates(build):
    torch.manual_seed(0)
    model = build()
    x = torch.randn(2, 1, 37, 21)
    logits, features = model(x, return_features=True)
    assert logits.shape == (2, 2, 37, 21)
    assert [f.shape[1] for f in features] == [16, 8, 4]
    logits.sum().backward()
    assert _first_conv_grad(model).abs().sum() > 0


def test_residual_unet_uses_residual_blocks_and_bilinear_upsampling():
    model = residual_unet(depth=2, base_channels=4)
    names = {type(m).__name__ for m in model.modules()}
    assert "ResidualBlock" in names and "Upsample" in names and "ConvTranspose2d" not in names


def test_pyramid_pooling_channels_and_constant_input():
    pooling = PyramidPooling(8, bins=(1, 2, 4), reduced_channels=2)
    x = torch.randn(1, 8, 12, 12)
    out = pooling(x)
    assert pooling.out_channels == 14 and out.shape == (1, 14, 12, 12)
    assert torch.equal(out[:, :8], x)  # the input passes through unchanged
    constant = pooling(torch.ones(1, 8, 12, 12))[:, 8:]
    # pooling a constant map gives a constant per channel, whatever the bin size
    assert torch.allclose(constant, constant[..., :1, :1].expand_as(constant), atol=1e-6)


def test_dilated_pyramid_is_the_sum_of_its_branches():
    pyramid = DilatedPyramid(3, 5, dilations=(2, 4)).eval()
    x = torch.randn(1, 3, 16, 16)
    expected = pyramid.branches[0](x) + pyramid.branches[1](x)
    assert torch.allclose(pyramid(x), expected, atol=1e-6)
    assert pyramid.branches[1][0].dilation == (4, 4)


@pytest.mark.parametrize("backbone", ["compact", "resnet18"])
def test_pspnet_segments_at_input_size(backbone):
    model = PSPNet(num_classes=3, backbone=backbone, output_stride=8, head_channels=16)
    out = model(torch.randn(2, 1, 64, 40))
    assert out.shape == (2, 3, 64, 40)
    out.mean().backward()
    assert _first_conv_grad(model).abs().sum() > 0


def test_feature_backbone_output_strides():
    assert feature_backbone("resnet18", output_stride=8)(torch.randn(1, 1, 64, 64)).shape == (1, 512, 8, 8)
    assert feature_backbone("resnet50", output_stride=16).output_stride == 16
    compact = feature_backbone("compact", base_channels=4, output_stride=16)
    assert compact(torch.randn(1, 1, 64, 64)).shape == (1, 32, 4, 4) and compact.output_stride == 16
    with pytest.raises(ValueError, match="unknown backbone"):
        feature_backbone("alexnet")
    with pytest.raises(ValueError, match="output_stride 32"):
        feature_backbone("densenet121", output_stride=8)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_b0", "densenet121", "compact"])
def test_classifiers_take_grey_images(name):
    model = classifier(name, in_channels=1, num_outputs=3)
    assert model(torch.randn(2, 1, 64, 32)).shape == (2, 3)


def test_small_densenet_follows_block_layout():
    model = small_densenet(num_outputs=8, growth_rate=8, blocks=5, layers_per_block=2)
    blocks = [m for m in model.modules() if type(m).__name__ == "_DenseBlock"]
    assert len(blocks) == 5
    assert model(torch.randn(2, 1, 200, 120)).shape == (2, 8)


def test_soft_argmax_finds_a_sharp_peak_and_has_gradients():
    heatmaps = torch.full((1, 2, 9, 7), -50.0)
    heatmaps[0, 0, 3, 5] = 50.0
    heatmaps[0, 1, 8, 0] = 50.0
    heatmaps.requires_grad_(True)
    coords = soft_argmax2d(heatmaps)
    assert torch.allclose(coords, torch.tensor([[[5.0, 3.0], [0.0, 8.0]]]), atol=1e-4)
    uniform = soft_argmax2d(torch.zeros(1, 1, 5, 9))
    assert torch.allclose(uniform, torch.tensor([[[4.0, 2.0]]]))  # centre of the grid
    soft_argmax2d(torch.randn(1, 1, 5, 5, requires_grad=True)).sum().backward()
    coords.sum().backward()
    assert heatmaps.grad is not None


def test_heatmap_argmax_shifts_a_quarter_pixel_to_the_larger_neighbour():
    heatmap = torch.zeros(1, 1, 5, 5)
    heatmap[0, 0, 2, 2] = 1.0
    heatmap[0, 0, 2, 3] = 0.5
    coords, peaks = heatmap_argmax(heatmap)
    assert coords.tolist() == [[[2.25, 2.0]]] and peaks.item() == 1.0


def test_simple_baseline_and_hrnet_heatmap_shapes():
    simple = SimpleBaseline(68, backbone="compact", base_channels=4, deconv_channels=8, num_deconv=3)
    out = simple(torch.randn(1, 1, 128, 64))
    assert out.shape == (1, 68, 32, 16) and simple.heatmap_stride == 4
    hrnet = HRNet(4, width=4, num_stages=3, stem_stride=2)
    out = hrnet(torch.randn(2, 1, 32, 24))
    assert out.shape == (2, 4, 16, 12) and hrnet.heatmap_stride == 2
    out.sum().backward()
    assert _first_conv_grad(hrnet).abs().sum() > 0
    assert len(hrnet.stages[-1][0].branches) == 3


def _toy_images():
    torch.manual_seed(0)
    return [torch.rand(1, 96, 64) for _ in range(2)]


def test_faster_rcnn_trains_and_detects():
    model = detection.faster_rcnn(
        backbone="compact", base_channels=4, fpn_channels=8, min_size=96, max_size=96, anchor_sizes=(8, 16)
    )
    targets = [detection.detection_targets(torch.tensor([[10.0, 10, 30, 20], [12, 30, 32, 40]]))] * 2
    losses = model(_toy_images(), targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    sum(losses.values()).backward()
    assert _first_conv_grad(model).abs().sum() > 0
    model.eval()
    output = model(_toy_images())
    assert set(output[0]) == {"boxes", "labels", "scores"}


def test_retinanet_and_mask_rcnn_losses():
    retina = detection.retinanet(
        backbone="compact", base_channels=4, fpn_channels=8, min_size=96, max_size=96, anchor_sizes=(8, 16)
    )
    targets = [detection.detection_targets(torch.tensor([[10.0, 10, 30, 20]]), labels_start=0)] * 2
    assert set(retina(_toy_images(), targets)) == {"classification", "bbox_regression"}
    masks = torch.zeros(1, 96, 64)
    masks[0, 10:20, 10:30] = 1
    mask_rcnn = detection.mask_rcnn(
        backbone="compact", base_channels=4, fpn_channels=8, min_size=96, max_size=96, anchor_sizes=(8, 16)
    )
    losses = mask_rcnn(
        _toy_images(), [detection.detection_targets(torch.tensor([[10.0, 10, 30, 20]]), masks=masks)] * 2
    )
    assert "loss_mask" in losses and torch.isfinite(losses["loss_mask"])


def test_gradient_reversal_negates_and_scales_the_gradient():
    x = torch.randn(3, requires_grad=True)
    y = grad_reverse(x, 0.5)
    assert torch.equal(y, x)
    (2 * y).sum().backward()
    assert torch.allclose(x.grad, torch.full((3,), -1.0))


def test_domain_discriminator_pushes_features_against_its_loss():
    torch.manual_seed(0)
    features = torch.randn(4, 6, requires_grad=True)
    discriminator = DomainDiscriminator(6, hidden=5)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(discriminator(features), torch.ones(4))
    loss.backward()
    reversed_grad = features.grad.clone()
    features.grad = None
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        discriminator.net[1:](features).squeeze(-1), torch.ones(4)
    )
    plain.backward()
    assert torch.allclose(reversed_grad, -features.grad)


def test_grad_scaler_step_and_batches_on_cpu():
    weight = torch.nn.Parameter(torch.tensor([3.0]))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    stepper = GradScalerStep(torch.device("cpu"))
    for _ in range(5):
        stepper.step((weight**2).sum(), optimizer)
    assert abs(weight.item() - 3.0 * 0.8**5) < 1e-5  # w <- w - 0.1 * 2w
    stream = batches(5, 2, rng=np.random.default_rng(0))
    first_epoch = np.concatenate([next(stream) for _ in range(3)])
    assert sorted(first_epoch.tolist()) == [0, 1, 2, 3, 4]
