"""The two adversarial networks of Liu et al. that are not U-Nets (the U-Nets come from ``baselines.nn.unet3d``):

- ``VolumeGenerator``: the fewshot-GAN generator, a 3D-GAN style volume generator (after Wu et al. 2016): a noise
  vector is mapped by a linear layer to a small feature volume, then doubled in size by transposed 3D convolutions
  (batch norm + ReLU) up to one image patch (linear output, since patches are standardised, not bounded).
- ``PairDiscriminator``: the semi-cGAN discriminator, a 3D CNN that sees an image patch concatenated with a
  segmentation (one-hot ground truth or the generator's softmax) and ends in two fully-connected layers giving the
  logit of "this pair is real".
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.nn.blocks3d import ConvNormAct3d


class VolumeGenerator(nn.Module):
    def __init__(self, *, latent_dim: int, patch: tuple[int, int, int], base_filters: int, levels: int):
        super().__init__()
        factor = 2**levels
        if any(side % factor for side in patch):
            raise ValueError(f"patch {patch} must be divisible by 2**levels = {factor} for the volume generator")
        self.start = tuple(side // factor for side in patch)
        widths = [base_filters * 2 ** (levels - 1 - i) for i in range(levels)]
        self.widths = widths
        self.project = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * self.start[0] * self.start[1] * self.start[2]),
            nn.ReLU(inplace=True),
        )
        layers: list[nn.Module] = []
        for i in range(levels):
            out = widths[i + 1] if i + 1 < levels else base_filters
            layers += [nn.ConvTranspose3d(widths[i], out, kernel_size=4, stride=2, padding=1),
                       nn.BatchNorm3d(out), nn.ReLU(inplace=True)]
        layers.append(nn.Conv3d(base_filters, 1, kernel_size=3, padding=1))
        self.body = nn.Sequential(*layers)
        self.latent_dim = latent_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.project(z).view(z.shape[0], self.widths[0], *self.start)
        return self.body(x)


class PairDiscriminator(nn.Module):
    def __init__(self, *, in_channels: int, base_filters: int, levels: int, hidden: int = 64):
        super().__init__()
        layers: list[nn.Module] = []
        width = in_channels
        for i in range(levels):
            out = base_filters * 2**i
            layers.append(ConvNormAct3d(width, out, kernel_size=4, stride=2, padding=1,
                                        norm="instance" if i else "none", act="leaky"))
            width = out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool3d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(width, hidden), nn.LeakyReLU(0.2, inplace=True),
                                        nn.Linear(hidden, 1))

    def forward(self, image: torch.Tensor, segmentation: torch.Tensor) -> torch.Tensor:
        """Logit (N,) that ``(image, segmentation)`` is a real image–label pair."""
        return self.classifier(self.features(torch.cat([image, segmentation], dim=1)))[:, 0]
