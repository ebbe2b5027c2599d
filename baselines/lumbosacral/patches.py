"""Patch sampling and augmentation for the lumbosacral baselines (Liu et al. Sect. 2.2): random 32×64×64 patches
(half of the labelled ones centred on a foreground voxel so that the thin nerve is seen), white noise, vertical and
horizontal flips, a random voxel-size disturbance of ±0.2 mm per axis and a rotation of up to ±10° about the
longitudinal (z) axis. Optionally (beyond the paper; off unless ``intensity_shift``/``intensity_scale`` are set) a
random offset and contrast factor of the standardised intensity per patch, for robustness to another scanner's HU
calibration. Geometry is done with one sampling grid from a cropped region larger than the patch, so
rotated corners read real image content."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from baselines.nn.volumes import rotation_matrix, warp


@dataclass(frozen=True)
class Augmentation:
    noise_std: float  # on the standardised intensity
    flip_probability: float
    voxel_jitter_mm: float
    rotation_degrees: float
    spacing: tuple[float, float, float]  # (z, y, x) mm of the resampled volumes
    intensity_shift: float = 0.0  # not in the paper: uniform ± offset of the standardised intensity per patch
    intensity_scale: float = 0.0  # not in the paper: contrast factor drawn uniformly in 1 ± this per patch


def crop(volume: np.ndarray, centre: tuple[int, int, int], size: tuple[int, int, int]) -> np.ndarray:
    """A ``size`` box centred at ``centre``; parts outside the volume replicate its edge."""
    starts = [c - s // 2 for c, s in zip(centre, size)]
    pad = [(max(0, -st), max(0, st + s - n)) for st, s, n in zip(starts, size, volume.shape)]
    padded = np.pad(volume, pad, mode="edge")
    box = tuple(slice(st + p[0], st + p[0] + s) for st, p, s in zip(starts, pad, size))
    return padded[box]


def sample_centre(shape, *, labels: np.ndarray | None, foreground_probability: float, rng: np.random.Generator):
    if labels is not None and rng.random() < foreground_probability:
        foreground = np.argwhere(labels > 0)
        if len(foreground):
            return tuple(int(v) for v in foreground[rng.integers(len(foreground))])
    return tuple(int(rng.integers(n)) for n in shape)


def augmented_patch(
    image: np.ndarray,
    labels: np.ndarray | None,
    *,
    patch: tuple[int, int, int],
    augmentation: Augmentation,
    foreground_probability: float,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One augmented (1, 1, D, H, W) image patch and (1, D, H, W) label patch (``None`` for unlabelled data)."""
    centre = sample_centre(image.shape, labels=labels, foreground_probability=foreground_probability, rng=rng)
    region = tuple(int(math.ceil(s * 1.5)) for s in patch)
    image_region = torch.from_numpy(np.ascontiguousarray(crop(image, centre, region)))[None, None].float()
    label_region = (
        None if labels is None else torch.from_numpy(np.ascontiguousarray(crop(labels, centre, region)))[None].long()
    )
    angle = math.radians(rng.uniform(-augmentation.rotation_degrees, augmentation.rotation_degrees))
    # grid coordinates are (x, y, z); a patch voxel of spacing s read with spacing s + δ zooms by (s + δ) / s
    zoom = [
        (s + rng.uniform(-augmentation.voxel_jitter_mm, augmentation.voxel_jitter_mm)) / s
        for s in reversed(augmentation.spacing)
    ]
    flips = [-1.0 if rng.random() < augmentation.flip_probability else 1.0 for _ in range(2)] + [1.0]
    # the identity grid over the patch covers patch/region of the cropped region's normalised extent
    fraction = [p / r for p, r in zip(reversed(patch), reversed(region))]
    matrix = (torch.diag(torch.tensor(fraction)) @ rotation_matrix((0.0, 0.0, angle))
              @ torch.diag(torch.tensor(zoom)) @ torch.diag(torch.tensor(flips)))
    out_image, out_labels = warp(image_region, label_region, matrix=matrix.float(), size=patch)
    if augmentation.intensity_scale > 0 or augmentation.intensity_shift > 0:
        scale = 1.0 + rng.uniform(-augmentation.intensity_scale, augmentation.intensity_scale)
        out_image = out_image * scale + rng.uniform(-augmentation.intensity_shift, augmentation.intensity_shift)
    if augmentation.noise_std > 0:
        noise = torch.from_numpy(rng.normal(0.0, augmentation.noise_std, out_image.shape)).float()
        out_image = out_image + noise
    return out_image, out_labels
