"""Generic 3D convolution blocks shared by the CT baselines (metastatic, lumbosacral, fracture).

Tensors are ``(batch, channels, depth, height, width)``; with SimpleITK arrays depth is z, height y, width x.

Options every block takes (keyword-only):

- ``norm``: ``"batch"``, ``"instance"`` (affine), ``"group"`` (8 groups or fewer), ``"weight"`` (weight
  normalisation of the convolution instead of a normalisation layer, as in the fewshot-GAN discriminator) or
  ``"none"``.
- ``act``: ``"relu"``, ``"leaky"`` (leaky ReLU, slope ``negative_slope``) or ``"none"``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

NORMS = ("batch", "instance", "group", "weight", "none")
ACTS = ("relu", "leaky", "none")
POOLS = ("max", "avg", "conv")
UPS = ("transpose", "trilinear")


def _check(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")


def norm_layer(norm: str, channels: int) -> nn.Module:
    """The normalisation layer for ``norm`` (identity for ``"weight"`` and ``"none"``)."""
    _check("norm", norm, NORMS)
    if norm == "batch":
        return nn.BatchNorm3d(channels)
    if norm == "instance":
        return nn.InstanceNorm3d(channels, affine=True)
    if norm == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    return nn.Identity()


def act_layer(act: str, *, negative_slope: float = 0.2) -> nn.Module:
    _check("act", act, ACTS)
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "leaky":
        return nn.LeakyReLU(negative_slope, inplace=True)
    return nn.Identity()


class ConvNormAct3d(nn.Sequential):
    """Convolution, normalisation, activation. With ``norm="weight"`` the convolution is weight-normalised
    (magnitude and direction learnt separately) and no normalisation layer follows it."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        norm: str = "batch",
        act: str = "relu",
        negative_slope: float = 0.2,
    ):
        _check("norm", norm, NORMS)
        conv = nn.Conv3d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2 if padding is None else padding,
            bias=norm in ("weight", "none"),
        )
        if norm == "weight":
            conv = weight_norm(conv)
        super().__init__(conv, norm_layer(norm, out_channels), act_layer(act, negative_slope=negative_slope))


class DoubleConv3d(nn.Sequential):
    """Two 3×3×3 conv-norm-act layers, the unit of every U-Net level."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch", act: str = "relu",
                 negative_slope: float = 0.2):
        options = dict(norm=norm, act=act, negative_slope=negative_slope)
        super().__init__(
            ConvNormAct3d(in_channels, out_channels, **options),
            ConvNormAct3d(out_channels, out_channels, **options),
        )


class ResidualBlock3d(nn.Module):
    """Two conv-norm layers with an identity (or 1×1×1 projection) shortcut, activation after the sum."""

    def __init__(self, in_channels: int, out_channels: int, *, norm: str = "batch", act: str = "relu",
                 negative_slope: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            ConvNormAct3d(in_channels, out_channels, norm=norm, act=act, negative_slope=negative_slope),
            ConvNormAct3d(out_channels, out_channels, norm=norm, act="none"),
        )
        self.shortcut = (
            nn.Identity()
            if in_channels == out_channels
            else ConvNormAct3d(in_channels, out_channels, kernel_size=1, norm=norm, act="none")
        )
        self.act = act_layer(act, negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


def conv_unit(in_channels: int, out_channels: int, *, residual: bool, norm: str, act: str,
              negative_slope: float = 0.2) -> nn.Module:
    """A U-Net level's convolutions: a residual block or two plain conv-norm-act layers."""
    cls = ResidualBlock3d if residual else DoubleConv3d
    return cls(in_channels, out_channels, norm=norm, act=act, negative_slope=negative_slope)


class Down3d(nn.Module):
    """Halve every spatial size (max/average pooling or a stride-2 convolution), then a conv unit."""

    def __init__(self, in_channels: int, out_channels: int, *, pool: str = "max", residual: bool = False,
                 norm: str = "batch", act: str = "relu", negative_slope: float = 0.2):
        super().__init__()
        _check("pool", pool, POOLS)
        if pool == "max":
            self.pool = nn.MaxPool3d(2)
        elif pool == "avg":
            self.pool = nn.AvgPool3d(2)
        else:
            self.pool = ConvNormAct3d(in_channels, in_channels, kernel_size=2, stride=2, padding=0, norm=norm,
                                      act=act, negative_slope=negative_slope)
        self.conv = conv_unit(in_channels, out_channels, residual=residual, norm=norm, act=act,
                              negative_slope=negative_slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pool(x))


class Up3d(nn.Module):
    """Double every spatial size (transposed convolution or trilinear interpolation + 1×1×1 conv), concatenate the
    skip connection from the encoder, then a conv unit."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int, *, up: str = "transpose",
                 residual: bool = False, norm: str = "batch", act: str = "relu", negative_slope: float = 0.2):
        super().__init__()
        _check("up", up, UPS)
        if up == "transpose":
            self.up = nn.ConvTranspose3d(in_channels, out_channels, kernel_size=2, stride=2)
        else:
            self.up = nn.Sequential(
                nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False),
                nn.Conv3d(in_channels, out_channels, kernel_size=1),
            )
        self.conv = conv_unit(out_channels + skip_channels, out_channels, residual=residual, norm=norm, act=act,
                              negative_slope=negative_slope)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = self.up(x)
        return self.conv(torch.cat([x, skip], dim=1))
