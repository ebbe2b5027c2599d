"""3D blocks and the configurable 3D U-Net: shapes, options, gradients, hand-counted parameters."""

import pytest
import torch
from torch import nn

from baselines.nn.blocks3d import ConvNormAct3d, DoubleConv3d, Down3d, ResidualBlock3d, Up3d
from baselines.nn.unet3d import UNet3D, count_parameters

torch.set_num_threads(1)


def test_double_conv_parameter_count_by_hand():
    # conv 1->2 (27*2 weights, no bias with batch norm) + BN(2: weight, bias) + conv 2->2 (27*4) + BN(2)
    assert count_parameters(DoubleConv3d(1, 2, norm="batch")) == 54 + 4 + 108 + 4
    # weight norm: each conv has direction v (same size as weight), magnitude g (one per output channel) and a bias
    assert count_parameters(DoubleConv3d(1, 2, norm="weight", act="leaky")) == (54 + 2 + 2) + (108 + 2 + 2)


def test_pointwise_conv_matches_einsum():
    torch.manual_seed(0)
    block = ConvNormAct3d(3, 2, kernel_size=1, norm="none", act="none")
    x = torch.randn(2, 3, 4, 5, 6)
    conv = block[0]
    expected = torch.einsum("oi,nidhw->nodhw", conv.weight[:, :, 0, 0, 0], x) + conv.bias.view(1, 2, 1, 1, 1)
    torch.testing.assert_close(block(x), expected)


def test_leaky_relu_keeps_negative_slope():
    block = ConvNormAct3d(1, 1, kernel_size=1, norm="none", act="leaky", negative_slope=0.1)
    with torch.no_grad():
        block[0].weight.fill_(1.0)
        block[0].bias.zero_()
    x = torch.full((1, 1, 1, 1, 1), -2.0)
    assert block(x).item() == pytest.approx(-0.2)


def test_weight_norm_is_a_parametrisation():
    block = ConvNormAct3d(2, 4, norm="weight", act="leaky")
    assert hasattr(block[0], "parametrizations") and "weight" in block[0].parametrizations
    assert isinstance(block[1], nn.Identity)


def test_average_pool_down_block_halves_and_averages():
    down = Down3d(1, 2, pool="avg", norm="none", act="none")
    x = torch.arange(8.0).view(1, 1, 2, 2, 2)
    assert down.pool(x).item() == pytest.approx(3.5)
    assert down(torch.randn(1, 1, 8, 6, 4)).shape == (1, 2, 4, 3, 2)


@pytest.mark.parametrize("pool", ["max", "avg", "conv"])
def test_down_up_shapes(pool):
    down = Down3d(2, 4, pool=pool, norm="group")
    up = Up3d(4, 2, 3, up="trilinear", norm="group")
    x = torch.randn(1, 2, 8, 8, 4)
    y = down(x)
    assert y.shape == (1, 4, 4, 4, 2)
    assert up(y, x).shape == (1, 3, 8, 8, 4)


def test_residual_block_projects_channels_and_identity_when_equal():
    assert isinstance(ResidualBlock3d(4, 4, norm="instance").shortcut, nn.Identity)
    block = ResidualBlock3d(2, 4, norm="instance")
    assert block(torch.randn(1, 2, 4, 4, 4)).shape == (1, 4, 4, 4, 4)


@pytest.mark.parametrize(
    "options",
    [
        dict(norm="batch"),
        dict(norm="instance", residual=True, up="trilinear"),
        dict(norm="weight", act="leaky", pool="avg"),
    ],
)
def test_unet_odd_sizes_and_gradients(options):
    torch.manual_seed(0)
    net = UNet3D(1, 3, base_filters=2, levels=3, **options)
    x = torch.randn(2, 1, 7, 10, 5)
    logits, features = net(x, return_features=True)
    assert logits.shape == (2, 3, 7, 10, 5)
    assert features.shape == (2, 8, 2, 3, 2)  # padded to 8x12x8 then halved twice; 2 * 2**2 channels
    logits.square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    assert any(p.grad.abs().sum() > 0 for p in net.parameters())


def test_unet_six_levels_widths_and_cap():
    net = UNet3D(1, 2, base_filters=4, levels=6, max_filters=64, norm="group")
    assert net.widths == [4, 8, 16, 32, 64, 64]
    assert net.multiple == 32
    assert net(torch.randn(1, 1, 32, 32, 32)).shape == (1, 2, 32, 32, 32)


def test_unet_learns_to_copy_a_threshold():
    torch.manual_seed(0)
    net = UNet3D(1, 2, base_filters=4, levels=2, norm="instance")
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x = torch.randn(2, 1, 8, 8, 8)
    target = (x[:, 0] > 0).long()
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(net(x), target)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_bad_options_raise():
    with pytest.raises(ValueError, match="norm"):
        UNet3D(1, 1, norm="layer")
    with pytest.raises(ValueError, match="pool"):
        UNet3D(1, 1, levels=2, pool="median")
    with pytest.raises(ValueError, match="depth"):
        UNet3D(1, 1, levels=2)(torch.randn(1, 8, 8, 8))
