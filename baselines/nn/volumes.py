"""Volume helpers shared by the 3D segmentation baselines (metastatic body, lumbosacral): SimpleITK IO keeping the
geometry, spatial augmentation by one sampling grid (rotation, scale, mirror, translation, elastic), resampling,
soft Dice loss and sliding-window inference. Arrays follow SimpleITK's ``(z, y, x)`` order; tensors add
``(batch, channel)`` in front."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F

from baselines.nn.training import autocast
from evaluators.layout import GROUND_TRUTH, INPUTS, read_manifest


def read_image(path: Path) -> sitk.Image:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: missing image file")
    return sitk.ReadImage(str(path))


def input_image(data_dir: Path, case_id: str, name: str = "image.nii.gz") -> sitk.Image:
    """The case's input volume from ``inputs/<case_id>/`` (the only place predict() reads)."""
    return read_image(Path(data_dir) / INPUTS / case_id / name)


def ground_truth_image(data_dir: Path, case_id: str) -> sitk.Image:
    return read_image(Path(data_dir) / GROUND_TRUTH / f"{case_id}.nii.gz")


def case_ids(data_dir: Path) -> list[str]:
    return read_manifest(data_dir).case_ids


def array(image: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(image).astype(np.float32)


def label_image_like(labels: np.ndarray, reference: sitk.Image) -> sitk.Image:
    """A uint8 label map with exactly the reference image's size, spacing, origin and direction."""
    expected = tuple(reversed(reference.GetSize()))
    if labels.shape != expected:
        raise ValueError(f"label array shape {labels.shape} does not match the input's {expected}")
    image = sitk.GetImageFromArray(labels.astype(np.uint8))
    image.CopyInformation(reference)
    return image


def resample_to_spacing(image: sitk.Image, spacing: tuple[float, float, float], *, labels: bool) -> sitk.Image:
    """Resample to a new voxel spacing (x, y, z) over the same physical extent; linear for images, nearest for
    label maps."""
    old_spacing, old_size = image.GetSpacing(), image.GetSize()
    size = [max(1, int(round(n * s / t))) for n, s, t in zip(old_size, old_spacing, spacing)]
    return sitk.Resample(
        image, size, sitk.Transform(), sitk.sitkNearestNeighbor if labels else sitk.sitkLinear,
        image.GetOrigin(), tuple(float(s) for s in spacing), image.GetDirection(),
        0 if labels else float(sitk.GetArrayViewFromImage(image).min()), image.GetPixelID(),
    )


def rotation_matrix(angles: tuple[float, float, float]) -> torch.Tensor:
    """Rotation about the three grid axes (radians), composed x·y·z."""
    a, b, c = angles
    rx = torch.tensor([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = torch.tensor([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = torch.tensor([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return (rx @ ry @ rz).float()


def warp(
    image: torch.Tensor,
    labels: torch.Tensor | None,
    *,
    matrix: torch.Tensor,
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
    elastic: torch.Tensor | None = None,
    size: tuple[int, int, int] | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Resample ``image`` (1, C, D, H, W) and an integer label map (1, D, H, W) through one grid: output voxel at
    normalised position p (x, y, z order, each in [-1, 1]) reads the input at ``matrix @ p + shift`` (+ ``elastic``
    displacement, shape (1, D', H', W', 3), normalised units). The output has spatial ``size`` (default: the
    input's). Image borders replicate; labels use nearest neighbour and zero outside."""
    theta = torch.cat([matrix, torch.tensor(shift, dtype=torch.float32).view(3, 1)], dim=1).unsqueeze(0)
    out_shape = [1, image.shape[1], *(size or image.shape[2:])]
    grid = F.affine_grid(theta.to(image), out_shape, align_corners=False)
    if elastic is not None:
        grid = grid + elastic.to(grid)
    warped = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if labels is None:
        return warped, None
    warped_labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                                  align_corners=False)
    return warped, warped_labels[:, 0].round().long()


def elastic_field(shape: tuple[int, int, int], *, magnitude: float, control: int, generator: torch.Generator):
    """A smooth random displacement field: Gaussian noise on a ``control``³ grid upsampled trilinearly;
    ``magnitude`` is the standard deviation in voxels of the coarsest axis."""
    coarse = torch.randn(1, 3, control, control, control, generator=generator) * magnitude
    # grid_sample's last dimension is (x, y, z) in normalised units (2 / size per voxel)
    scale = torch.tensor([2.0 / shape[2], 2.0 / shape[1], 2.0 / shape[0]]).view(1, 3, 1, 1, 1)
    field = F.interpolate(coarse * scale, size=shape, mode="trilinear", align_corners=True)
    return field.permute(0, 2, 3, 4, 1)


def degrade_resolution(image: torch.Tensor, spacing: float) -> torch.Tensor:
    """Simulate a coarser scan: resample a 1 mm volume to ``spacing`` mm (area averaging) and back (trilinear)."""
    size = image.shape[2:]
    coarse = [max(2, int(round(n / spacing))) for n in size]
    low = F.interpolate(image, size=coarse, mode="area")
    return F.interpolate(low, size=size, mode="trilinear", align_corners=False)


def soft_dice_loss(probabilities: torch.Tensor, target: torch.Tensor, *, eps: float = 1.0) -> torch.Tensor:
    """1 − mean over batch and channels of DSC = 2|P∩T| / (|P| + |T|), with soft P and one-hot T (same shape,
    (N, K, ...)); ``eps`` smooths empty channels."""
    dims = tuple(range(2, probabilities.ndim))
    intersection = (probabilities * target).sum(dims)
    total = probabilities.sum(dims) + target.sum(dims)
    return 1.0 - ((2.0 * intersection + eps) / (total + eps)).mean()


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start offsets covering ``size`` with windows of ``window`` every ``stride`` (the last one flush with the
    end)."""
    if size <= window:
        return [0]
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


@torch.no_grad()
def sliding_window_probabilities(
    net: torch.nn.Module,
    volume: torch.Tensor,
    *,
    window: tuple[int, int, int],
    stride: tuple[int, int, int],
    classes: int,
    device: torch.device,
) -> torch.Tensor:
    """Average the softmax of every window (D, H, W) placed every ``stride`` over ``volume`` (1, C, D, H, W);
    voxels covered by several windows get the mean. Returns (classes, D, H, W) on the CPU."""
    shape = volume.shape[2:]
    total = torch.zeros((classes, *shape))
    count = torch.zeros(shape)
    for z in window_starts(shape[0], window[0], stride[0]):
        for y in window_starts(shape[1], window[1], stride[1]):
            for x in window_starts(shape[2], window[2], stride[2]):
                box = (slice(z, z + window[0]), slice(y, y + window[1]), slice(x, x + window[2]))
                patch = volume[(slice(None), slice(None), *box)].to(device)
                with autocast(device):
                    logits = net(patch)
                total[(slice(None), *box)] += torch.softmax(logits.float(), dim=1)[0].cpu()
                count[box] += 1
    return total / count
