"""PSPNet-style pyramid pooling (Zhao et al. 2017) and the dilated-convolution pyramid Seg4Reg appends to it.

- ``PyramidPooling(in_channels, bins=(1, 2, 3, 6))``: average-pools the feature map to each bin size, reduces each
  with a 1×1 convolution, upsamples back and concatenates with the input; ``out_channels`` = in + len(bins)·reduced.
- ``DilatedPyramid(in_channels, out_channels, dilations=(2, 4, 6))``: parallel 3×3 convolutions with those dilation
  rates whose outputs are summed (keeps the feature-map size; the Seg4Reg paper, Sect. 2.2).
- ``PSPNet(backbone=..., num_classes=..., dilated_pyramid=True)``: a backbone from ``baselines.nn.backbones`` at
  output stride 8 (or what the backbone allows), pyramid pooling, optionally the dilated pyramid summed into the
  pooled features, a 3×3 fusion convolution and a 1×1 classifier; logits are upsampled to the input size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.nn.backbones import feature_backbone
from baselines.nn.unet import conv_bn_relu


class PyramidPooling(nn.Module):
    def __init__(self, in_channels: int, *, bins: tuple[int, ...] = (1, 2, 3, 6), reduced_channels: int | None = None):
        super().__init__()
        reduced = reduced_channels or max(in_channels // len(bins), 1)
        self.bins = tuple(bins)
        self.stages = nn.ModuleList(
            nn.Sequential(
                nn.AdaptiveAvgPool2d(size), nn.Conv2d(in_channels, reduced, 1, bias=False), nn.ReLU(inplace=True)
            )
            for size in self.bins
        )
        self.out_channels = in_channels + reduced * len(self.bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        pooled = [F.interpolate(stage(x), size=size, mode="bilinear", align_corners=False) for stage in self.stages]
        return torch.cat([x, *pooled], dim=1)


class DilatedPyramid(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, dilations: tuple[int, ...] = (2, 4, 6)):
        super().__init__()
        self.branches = nn.ModuleList(conv_bn_relu(in_channels, out_channels, dilation=rate) for rate in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([branch(x) for branch in self.branches]).sum(dim=0)


class PSPNet(nn.Module):
    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: int = 1,
        backbone: str = "resnet50",
        output_stride: int = 8,
        bins: tuple[int, ...] = (1, 2, 3, 6),
        dilated_pyramid: bool = True,
        dilations: tuple[int, ...] = (2, 4, 6),
        head_channels: int = 128,
    ):
        super().__init__()
        self.backbone = feature_backbone(backbone, in_channels=in_channels, output_stride=output_stride)
        channels = self.backbone.out_channels
        self.pooling = PyramidPooling(channels, bins=bins)
        self.fuse = conv_bn_relu(self.pooling.out_channels, head_channels)
        self.dilated = DilatedPyramid(channels, head_channels, dilations=dilations) if dilated_pyramid else None
        self.classifier = nn.Conv2d(head_channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.backbone(x)
        fused = self.fuse(self.pooling(features))
        if self.dilated is not None:
            fused = fused + self.dilated(features)
        return F.interpolate(self.classifier(fused), size=x.shape[-2:], mode="bilinear", align_corners=False)
