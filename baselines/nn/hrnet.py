"""A compact HRNet (Sun et al. 2019) for keypoint heatmaps, configurable down to CPU sizes.

``HRNet(num_keypoints, *, in_channels=1, width=16, num_stages=3, blocks=1, modules_per_stage=1, stem_stride=4)``
(``modules_per_stage``: one count for every stage, or one per stage):
a stem of stride-2 3×3 convolutions (``stem_stride`` 1, 2 or 4), then stages that keep every resolution alive —
stage s has s parallel branches (branch b at 1/2**b of the stem resolution with ``width · 2**b`` channels, each a
stack of ``blocks`` residual blocks) joined by an exchange unit after every module: each output branch sums all
inputs, upsampled (1×1 conv + bilinear) or downsampled (stride-2 3×3 convs) to its resolution. A new, lower branch is
spawned from the lowest one at each stage transition. The highest-resolution branch gives ``num_keypoints``
heatmaps at ``1 / stem_stride`` of the input (``heatmap_stride``), as HRNet-W48 does for pose. The paper setting
is width 48, four stages, four blocks, modules (1, 1, 4, 3): ``width=48, num_stages=4, blocks=4,
modules_per_stage=(1, 1, 4, 3)`` builds that layout, with basic residual blocks everywhere (HRNet's first stage uses
bottleneck blocks at 256 channels; not reproduced).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.nn.unet import ResidualBlock, conv_bn_relu


def _downsample(in_channels: int, out_channels: int, steps: int) -> nn.Sequential:
    layers = []
    for step in range(steps):
        last = step == steps - 1
        channels = out_channels if last else in_channels
        layers += [nn.Conv2d(in_channels, channels, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels)]
        if not last:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _ExchangeModule(nn.Module):
    """Parallel residual branches followed by the all-to-all fusion."""

    def __init__(self, widths: list[int], blocks: int):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(ResidualBlock(width, width) for _ in range(blocks))) for width in widths
        )
        self.fuse = nn.ModuleList()
        for target, target_width in enumerate(widths):
            row = nn.ModuleList()
            for source, source_width in enumerate(widths):
                if source == target:
                    row.append(nn.Identity())
                elif source > target:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(source_width, target_width, 1, bias=False), nn.BatchNorm2d(target_width)
                        )
                    )
                else:
                    row.append(_downsample(source_width, target_width, target - source))
            self.fuse.append(row)

    def forward(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        branches = [branch(x) for branch, x in zip(self.branches, inputs)]
        outputs = []
        for target, row in enumerate(self.fuse):
            size = branches[target].shape[-2:]
            total = 0
            for source, layer in enumerate(row):
                value = layer(branches[source])
                if source > target:
                    value = F.interpolate(value, size=size, mode="bilinear", align_corners=False)
                total = total + value
            outputs.append(F.relu(total))
        return outputs


class HRNet(nn.Module):
    def __init__(
        self,
        num_keypoints: int,
        *,
        in_channels: int = 1,
        width: int = 16,
        num_stages: int = 3,
        blocks: int = 1,
        modules_per_stage: int | tuple[int, ...] | list[int] = 1,
        stem_stride: int = 4,
    ):
        super().__init__()
        if isinstance(modules_per_stage, int):
            modules_per_stage = (modules_per_stage,) * num_stages
        if len(modules_per_stage) != num_stages:
            raise ValueError(f"modules_per_stage needs one count per stage ({num_stages}), got {modules_per_stage}")
        if stem_stride not in (1, 2, 4):
            raise ValueError(f"stem_stride must be 1, 2 or 4, got {stem_stride}")
        if num_stages < 1:
            raise ValueError(f"num_stages must be at least 1, got {num_stages}")
        stem, channels, stride = [], in_channels, 1
        for _ in range(2):
            layer = conv_bn_relu(channels, width)
            if stride < stem_stride:
                layer[0].stride = (2, 2)
                stride *= 2
            stem.append(layer)
            channels = width
        self.stem = nn.Sequential(*stem)
        self.transitions = nn.ModuleList()
        self.stages = nn.ModuleList()
        widths: list[int] = []
        for stage in range(num_stages):
            new_width = width * 2**stage
            # stage 0 starts from the stem; later stages spawn a lower branch from the current lowest one
            self.transitions.append(nn.Identity() if stage == 0 else _downsample(widths[-1], new_width, 1))
            widths = widths + [new_width]
            self.stages.append(
                nn.Sequential(*(_ExchangeModule(widths, blocks) for _ in range(modules_per_stage[stage])))
            )
        self.head = nn.Conv2d(width, num_keypoints, 1)
        self.heatmap_stride = stem_stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = [self.stem(x)]
        for stage, (transition, modules) in enumerate(zip(self.transitions, self.stages)):
            if stage > 0:
                branches = branches + [F.relu(transition(branches[-1]))]
            for module in modules:
                branches = module(branches)
        return self.head(branches[0])
