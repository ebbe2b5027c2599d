"""Heatmap heads and coordinate read-out for landmark detection.

- ``gaussian_maps(points, size, *, sigma) -> (..., H, W)``: the one Gaussian-target helper of every heatmap method:
  exp(-((x - px)² + (y - py)²) / 2σ²) on the ``size = (H, W)`` pixel grid for each (x, y) of ``points`` (..., 2),
  computed in the points' floating dtype (float32 for integer points).
- ``soft_argmax2d(heatmaps, *, beta=1.0) -> (N, K, 2)``: differentiable expected (x, y) position (pixels of the
  heatmap grid) under ``softmax(beta · heatmap)`` over each channel.
- ``heatmap_argmax(heatmaps) -> (coords (N, K, 2), peak values (N, K))``: the hard maximum refined by a quarter-pixel
  shift towards the larger neighbour (the usual pose-estimation read-out).
- ``DeconvHeatmapHead(in_channels, num_keypoints, num_deconv=3, deconv_channels=256)``: the SimpleBaseline head —
  stride-2 transposed convolutions (4×4, BN, ReLU) and a 1×1 convolution to one heatmap per keypoint.
- ``SimpleBaseline(num_keypoints, *, in_channels=1, backbone="resnet50", ...)``: backbone (``baselines.nn.backbones``)
  + deconvolution head (Xiao et al. 2018); heatmaps come out at ``output_stride / 2**num_deconv`` of the input.
"""

from __future__ import annotations

import torch
from torch import nn


def gaussian_maps(points: torch.Tensor, size: tuple[int, int], *, sigma: float) -> torch.Tensor:
    dtype = points.dtype if points.is_floating_point() else torch.float32
    xs = torch.arange(size[1], device=points.device, dtype=dtype)
    ys = torch.arange(size[0], device=points.device, dtype=dtype)
    dx = (xs[None, :] - points[..., 0, None, None]) ** 2
    dy = (ys[:, None] - points[..., 1, None, None]) ** 2
    return torch.exp(-(dx + dy) / (2 * sigma**2))


def _grids(height: int, width: int, *, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.arange(width, device=device, dtype=dtype),
        torch.arange(height, device=device, dtype=dtype),
    )


def soft_argmax2d(heatmaps: torch.Tensor, *, beta: float = 1.0) -> torch.Tensor:
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    n, k, height, width = heatmaps.shape
    probabilities = torch.softmax(beta * heatmaps.reshape(n, k, -1).float(), dim=-1).reshape(n, k, height, width)
    xs, ys = _grids(height, width, device=heatmaps.device, dtype=probabilities.dtype)
    x = (probabilities.sum(dim=2) * xs).sum(dim=-1)
    y = (probabilities.sum(dim=3) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    n, k, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    peaks, index = flat.max(dim=-1)
    ys, xs = torch.div(index, width, rounding_mode="floor"), index % width
    coords = torch.stack([xs, ys], dim=-1).float()
    maps = heatmaps.reshape(n * k, height, width)
    flat_x, flat_y = xs.reshape(-1), ys.reshape(-1)
    rows = torch.arange(n * k, device=heatmaps.device)
    left = maps[rows, flat_y, (flat_x - 1).clamp(min=0)]
    right = maps[rows, flat_y, (flat_x + 1).clamp(max=width - 1)]
    up = maps[rows, (flat_y - 1).clamp(min=0), flat_x]
    down = maps[rows, (flat_y + 1).clamp(max=height - 1), flat_x]
    shift = torch.stack([torch.sign(right - left), torch.sign(down - up)], dim=-1).reshape(n, k, 2)
    return coords + 0.25 * shift.float(), peaks


class DeconvHeatmapHead(nn.Module):
    def __init__(self, in_channels: int, num_keypoints: int, *, num_deconv: int = 3, deconv_channels: int = 256):
        super().__init__()
        layers, channels = [], in_channels
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(channels, deconv_channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            channels = deconv_channels
        self.deconv = nn.Sequential(*layers)
        self.final = nn.Conv2d(channels, num_keypoints, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.final(self.deconv(features))


class SimpleBaseline(nn.Module):
    def __init__(
        self,
        num_keypoints: int,
        *,
        in_channels: int = 1,
        backbone: str = "resnet50",
        output_stride: int = 32,
        base_channels: int = 16,
        num_deconv: int = 3,
        deconv_channels: int = 256,
    ):
        super().__init__()
        # Imported here: backbones needs torchvision, which the CPU baseline image lacks; the heatmap helpers
        # of this module (used by the labelling baselines) must import without it.
        from baselines.nn.backbones import feature_backbone

        self.backbone = feature_backbone(
            backbone, in_channels=in_channels, output_stride=output_stride, base_channels=base_channels
        )
        self.head = DeconvHeatmapHead(
            self.backbone.out_channels, num_keypoints, num_deconv=num_deconv, deconv_channels=deconv_channels
        )
        self.heatmap_stride = self.backbone.output_stride / 2**num_deconv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))
