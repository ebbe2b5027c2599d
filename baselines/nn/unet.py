"""2D U-Net and residual U-Net (Ronneberger et al. 2015; the residual variant as the Top-down AASCE method's RU-Net).

``UNet(in_channels=1, out_channels=2, base_channels=16, depth=4, residual=False, upsample="transpose")``:
each encoder level halves the resolution with 2×2 max pooling and doubles the channels; the decoder upsamples
(transposed convolution, or bilinear interpolation followed by a 1×1 convolution when ``upsample="bilinear"``),
concatenates the skip connection and applies the same block. ``residual=True`` replaces each double convolution by a
residual block (identity or 1×1 projection shortcut). Inputs of any size work: the image is padded to a multiple of
``2**depth`` and the logits are cropped back. ``bottleneck`` optionally inserts a module (built from the bottleneck
channel count) at the lowest resolution, e.g. a pyramid pooling block. ``forward(x, return_features=True)`` also
returns the decoder feature maps from coarse to fine (on the padded grid; for deep supervision or feature
aggregation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, *, kernel_size: int = 3, dilation: int = 1) -> nn.Sequential:
    padding = dilation * (kernel_size // 2)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class ConvBlock(nn.Module):
    """Two 3×3 convolutions, each followed by batch normalisation and ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(in_channels, out_channels), conv_bn_relu(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions with a shortcut (identity, or a 1×1 projection when the channel count changes)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(in_channels, out_channels),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class _Up(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, *, mode: str):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.Conv2d(in_channels, out_channels, 1),
            )
        else:
            raise ValueError(f"upsample must be 'transpose' or 'bilinear', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class UNet(nn.Module):
    def __init__(
        self,
        *,
        in_channels: int = 1,
        out_channels: int = 2,
        base_channels: int = 16,
        depth: int = 4,
        residual: bool = False,
        upsample: str = "transpose",
        bottleneck: Callable[[int], nn.Module] | None = None,
    ):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        block = ResidualBlock if residual else ConvBlock
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.depth = depth
        self.encoders = nn.ModuleList([block(in_channels, widths[0])])
        self.encoders.extend(block(widths[level - 1], widths[level]) for level in range(1, depth + 1))
        self.bottleneck = bottleneck(widths[-1]) if bottleneck is not None else nn.Identity()
        self.ups = nn.ModuleList(
            _Up(widths[level + 1], widths[level], mode=upsample) for level in reversed(range(depth))
        )
        self.decoders = nn.ModuleList(block(2 * widths[level], widths[level]) for level in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.decoder_channels = [widths[level] for level in reversed(range(depth))]

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        height, width = x.shape[-2:]
        multiple = 2**self.depth
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = self.bottleneck(skips.pop())
        features = []
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], dim=1))
            features.append(x)
        logits = self.head(x)[..., :height, :width]
        if return_features:
            return logits, features
        return logits


def residual_unet(**kwargs) -> UNet:
    """The RU-Net variant: residual blocks and bilinear upsampling (fewer parameters than transposed convolutions)."""
    kwargs.setdefault("upsample", "bilinear")
    return UNet(residual=True, **kwargs)
