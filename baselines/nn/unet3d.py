"""A configurable N-level 3D U-Net (Çiçek et al. 2016 style) built from ``baselines.nn.blocks3d``.

``levels`` counts resolution levels including the bottleneck (a 6-level net halves the volume five times); level
``i`` has ``base_filters * 2**i`` channels, capped at ``max_filters``. Inputs of any size work: the volume is padded
(edge replication) up to a multiple of ``2**(levels-1)`` and the output cropped back, so the logits always have the
input's spatial shape.

Options used by the CT baselines: ``norm`` (batch / instance / group / weight / none), ``act`` (relu / leaky),
``pool`` (max / avg / conv), ``up`` (transpose / trilinear), ``residual`` conv units, ``dropout`` at the bottleneck.
The fewshot-GAN discriminator of Liu et al. is ``UNet3D(..., norm="weight", act="leaky", pool="avg")`` and uses
``forward(x, return_features=True)`` to get the bottleneck features for its feature-matching loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from baselines.nn.blocks3d import Down3d, Up3d, conv_unit


class UNet3D(nn.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        base_filters: int = 32,
        levels: int = 5,
        max_filters: int | None = None,
        norm: str = "batch",
        act: str = "relu",
        negative_slope: float = 0.2,
        pool: str = "max",
        up: str = "transpose",
        residual: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if levels < 1:
            raise ValueError(f"levels must be at least 1, got {levels}")
        if base_filters < 1:
            raise ValueError(f"base_filters must be positive, got {base_filters}")
        widths = [base_filters * 2**i for i in range(levels)]
        if max_filters is not None:
            widths = [min(w, max_filters) for w in widths]
        self.levels = levels
        self.widths = widths
        options = dict(residual=residual, norm=norm, act=act, negative_slope=negative_slope)
        self.stem = conv_unit(in_channels, widths[0], **options)
        self.downs = nn.ModuleList(Down3d(widths[i], widths[i + 1], pool=pool, **options) for i in range(levels - 1))
        self.dropout = nn.Dropout3d(dropout) if dropout > 0 else nn.Identity()
        self.ups = nn.ModuleList(
            Up3d(widths[i + 1], widths[i], widths[i], up=up, **options) for i in reversed(range(levels - 1))
        )
        self.head = nn.Conv3d(widths[0], out_channels, kernel_size=1)

    @property
    def multiple(self) -> int:
        """Every spatial size the encoder sees is padded up to a multiple of this."""
        return 2 ** (self.levels - 1)

    def forward(self, x: torch.Tensor, *, return_features: bool = False):
        """Logits ``(N, out_channels, D, H, W)``; with ``return_features`` also the bottleneck feature map."""
        if x.ndim != 5:
            raise ValueError(f"UNet3D expects (batch, channels, depth, height, width), got shape {tuple(x.shape)}")
        size = x.shape[2:]
        pad = [(-s) % self.multiple for s in size]
        if any(pad):
            # F.pad takes (last dim first) pairs; pad only at the far end of each axis.
            x = F.pad(x, (0, pad[2], 0, pad[1], 0, pad[0]), mode="replicate")
        skips = [self.stem(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        features = self.dropout(skips.pop())
        y = features
        for up in self.ups:
            y = up(y, skips.pop())
        logits = self.head(y)[:, :, : size[0], : size[1], : size[2]]
        return (logits, features) if return_features else logits


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
