"""Randomly initialised backbones (no pretrained weights can be downloaded) for grey-level radiographs.

- ``feature_backbone(name, *, in_channels=1, output_stride=32, base_channels=16) -> FeatureBackbone``: a module
  mapping ``(N, C, H, W)`` to its last feature map, with ``out_channels`` and ``output_stride`` attributes.
  Names: torchvision ``resnet18|34|50|101|152``, ``densenet121|161|169|201``, ``vgg11|13|16|19`` (+ ``_bn``),
  ``efficientnet_b0``…``efficientnet_b7``, and ``compact`` (a four-stage residual network whose first stage has
  ``base_channels`` channels, for CPU presets). ``output_stride`` 8 or 16 is supported by the ResNets (dilation
  for bottleneck ResNets as in PSPNet, stride removal for basic-block ResNets) and ``compact``; the others give 32.
- ``classifier(name, *, in_channels=1, num_outputs, base_channels=16) -> nn.Module``: an image → vector network
  (regression or classification). Same names, plus ``densenet-small`` (``small_densenet`` defaults).
- ``small_densenet(*, in_channels=1, num_outputs, growth_rate=8, blocks=5, layers_per_block=2, init_features=16)``:
  torchvision's DenseNet with a custom block layout (the Khanal corner regressor: 5 dense blocks, growth rate 8,
  global average pooling, a linear output layer).
Every torchvision model is built with ``weights=None`` and its first convolution replaced to take ``in_channels``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck

from baselines.nn.unet import ResidualBlock, conv_bn_relu

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
DENSENETS = ("densenet121", "densenet161", "densenet169", "densenet201")
VGGS = tuple(f"vgg{depth}{suffix}" for depth in (11, 13, 16, 19) for suffix in ("", "_bn"))
EFFICIENTNETS = tuple(f"efficientnet_b{index}" for index in range(8))
NAMES = RESNETS + DENSENETS + VGGS + EFFICIENTNETS + ("compact",)


def replace_first_conv(model: nn.Module, in_channels: int) -> nn.Module:
    """Swap the model's first ``nn.Conv2d`` for one with ``in_channels`` inputs (other settings unchanged)."""
    for parent in model.modules():
        for child_name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                if child.in_channels != in_channels:
                    setattr(
                        parent,
                        child_name,
                        nn.Conv2d(
                            in_channels,
                            child.out_channels,
                            child.kernel_size,
                            stride=child.stride,
                            padding=child.padding,
                            dilation=child.dilation,
                            groups=1,
                            bias=child.bias is not None,
                        ),
                    )
                return model
    raise ValueError(f"{type(model).__name__} has no Conv2d layer")


def _check_name(name: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(allowed)}")


class CompactResNet(nn.Module):
    """A small residual network shaped like a ResNet: a stride-2 3×3 stem and 2×2 max pooling (stride 4), then
    ``layer1``…``layer4`` of one residual block each (widths ``base_channels · 2**level``), the later three
    halving the resolution until ``output_stride`` is reached. Its children are named like torchvision's ResNets
    so FPN feature extraction (``baselines.nn.detection``) can pick the layers."""

    def __init__(self, *, in_channels: int = 1, base_channels: int = 16, output_stride: int = 32):
        super().__init__()
        widths = [base_channels * 2**level for level in range(4)]
        stem = conv_bn_relu(in_channels, widths[0])
        stem[0].stride = (2, 2)
        self.stem = nn.Sequential(stem, nn.MaxPool2d(2))
        stride, previous = 4, widths[0]
        for level, width in enumerate(widths, start=1):
            downsample = level > 1 and stride < output_stride
            stride *= 2 if downsample else 1
            layer = nn.Sequential(nn.MaxPool2d(2) if downsample else nn.Identity(), ResidualBlock(previous, width))
            setattr(self, f"layer{level}", layer)
            previous = width
        self.out_channels = widths[-1]
        self.output_stride = stride
        self.widths = widths

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for level in range(1, 5):
            x = getattr(self, f"layer{level}")(x)
        return x


class FeatureBackbone(nn.Module):
    def __init__(self, body: nn.Module, *, out_channels: int, output_stride: int, final_relu: bool = False):
        super().__init__()
        self.body = body
        self.out_channels = out_channels
        self.output_stride = output_stride
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)
        return F.relu(features) if self.final_relu else features


def _resnet(name: str, *, output_stride: int) -> nn.Module:
    factory = getattr(torchvision.models, name)
    if name in ("resnet18", "resnet34"):
        model = factory(weights=None)
        layers = [model.layer4, model.layer3]
        for layer in layers[: {32: 0, 16: 1, 8: 2}[output_stride]]:
            layer[0].conv1.stride = (1, 1)
            layer[0].downsample[0].stride = (1, 1)
        return model
    dilate = {32: [False, False, False], 16: [False, False, True], 8: [False, True, True]}[output_stride]
    model = factory(weights=None, replace_stride_with_dilation=dilate)
    assert isinstance(model.layer4[0], Bottleneck)
    return model


def feature_backbone(
    name: str, *, in_channels: int = 1, output_stride: int = 32, base_channels: int = 16
) -> FeatureBackbone:
    _check_name(name, NAMES)
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
    if name == "compact":
        model = CompactResNet(in_channels=in_channels, base_channels=base_channels, output_stride=output_stride)
        return FeatureBackbone(model, out_channels=model.out_channels, output_stride=model.output_stride)
    if name in RESNETS:
        model = replace_first_conv(_resnet(name, output_stride=output_stride), in_channels)
        body = nn.Sequential(
            model.conv1, model.bn1, model.relu, model.maxpool, model.layer1, model.layer2, model.layer3, model.layer4
        )
        return FeatureBackbone(body, out_channels=model.fc.in_features, output_stride=output_stride)
    if output_stride != 32:
        raise ValueError(f"backbone {name!r} only supports output_stride 32, got {output_stride}")
    model = replace_first_conv(getattr(torchvision.models, name)(weights=None), in_channels)
    if name in DENSENETS:
        return FeatureBackbone(
            model.features, out_channels=model.classifier.in_features, output_stride=32, final_relu=True
        )
    if name in VGGS:
        channels = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)][-1]
        return FeatureBackbone(model.features, out_channels=channels, output_stride=32)
    return FeatureBackbone(model.features, out_channels=model.classifier[-1].in_features, output_stride=32)


class _PooledHead(nn.Module):
    def __init__(self, backbone: FeatureBackbone, num_outputs: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.backbone(x), 1), 1))


def small_densenet(
    *,
    in_channels: int = 1,
    num_outputs: int,
    growth_rate: int = 8,
    blocks: int = 5,
    layers_per_block: int = 2,
    init_features: int = 16,
) -> nn.Module:
    model = torchvision.models.DenseNet(
        growth_rate=growth_rate,
        block_config=(layers_per_block,) * blocks,
        num_init_features=init_features,
        num_classes=num_outputs,
    )
    return replace_first_conv(model, in_channels)


def classifier(name: str, *, in_channels: int = 1, num_outputs: int, base_channels: int = 16) -> nn.Module:
    _check_name(name, NAMES + ("densenet-small",))
    if name == "densenet-small":
        return small_densenet(in_channels=in_channels, num_outputs=num_outputs)
    if name == "compact":
        return _PooledHead(feature_backbone(name, in_channels=in_channels, base_channels=base_channels), num_outputs)
    model = getattr(torchvision.models, name)(weights=None, num_classes=num_outputs)
    return replace_first_conv(model, in_channels)
