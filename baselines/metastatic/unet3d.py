"""Metastatic vertebral-body (trabecular centrum) segmentation with a 3D U-Net and eight augmentation settings.

Follows Klein et al., "Metastatic Vertebrae Segmentation for Use in a Clinical Pipeline" (CSI 2019):

- Sect. 4 / Fig. 1: a 6-level 3D U-Net with 32 base filters (``baselines.nn.unet3d.UNet3D``; filters double per
  level, max pooling, transposed-convolution up-sampling, batch norm).
- Sect. 4.1: inputs are 128×128×64 patches at 1 mm around one vertebra (the task's input already is such a
  patch); loss = negative Dice (we minimise 1 − soft DSC of the foreground probability, the same gradient); Adam
  with learning rate 1e-4; 200 epochs in the ``paper`` preset.
- Sect. 4.2: three augmentation families, applied on the fly at the native 1 mm grid and combined by
  ``Config.augmentation`` ∈ {N, S, T, R, ST, SR, TR, STR}:
  S (shape) = random rotation about every axis, isotropic scaling, a smooth elastic displacement and left-right
  mirroring; T (translation) = moving the crop window over the patch's real anatomy so the body is off-centre (a
  window of ``1 − translate_fraction`` of each in-plane extent and ``1 − translate_fraction / 2`` in z at a random
  position, seen by the network at the same voxel scale as a whole patch; no voxel is invented at the edges);
  R (resampling) = resampling the image to a random voxel size in 1–2 mm and back to 1 mm (the mask is left as is,
  since the anatomy is unchanged).
- Sect. 4.4 evaluation (DSC and Concurrency under the four test conditions) is done by the benchmark
  (``benchmarks/ctxr_metastatic.py``) with ``evaluators``.

Where it differs: no pretrained weights and no Keras; trained on SpineBench's generated phantoms rather than the
Sunnybrook cohort; the ``tiny``/``standard`` presets shrink the network (fewer levels and filters, group norm for
batch size 1) and let the network see the patch resized to a coarser grid (``input_size``), with the prediction
resized back onto the input's own grid; augmentation works on the case's own voxel size (SpineBench's small
phantoms are 1.5 mm, so there R only acts for drawn voxel sizes above 1.5 mm); the rotation/scale/elastic/translation
ranges are not given in the paper and are our choices (documented in ``Config``). T needs anatomy beyond the
window, which a task patch only has inside itself, so a T-trained network sees windows smaller than the patch during
training (a fully convolutional network, so it still predicts whole patches); S's rotations replicate edge voxels
where a corner of the rotated patch falls outside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from baselines.nn.training import GradScalerStep, autocast, resolve_device, seed_everything, torch_generator
from baselines.nn.unet3d import UNet3D
from baselines.nn.volumes import (
    array,
    case_ids,
    degrade_resolution,
    elastic_field,
    ground_truth_image,
    input_image,
    label_image_like,
    rotation_matrix,
    soft_dice_loss,
    warp,
    window_starts,
)

TASK = "metastatic-body-ct"
PAPER = "Klein et al., metastatic vertebral-body segmentation with a 3D U-Net and augmentation (CSI 2019)"
AUGMENTATIONS = ("N", "S", "T", "R", "ST", "SR", "TR", "STR")


@dataclass(frozen=True)
class Config:
    augmentation: str = "N"  # any of AUGMENTATIONS: S shape, T translation, R resampling, N none
    levels: int = 6
    base_filters: int = 32
    max_filters: int | None = None
    norm: str = "batch"
    input_size: tuple[int, int, int] = (64, 128, 128)  # (z, y, x) grid the network sees
    epochs: int = 200
    batch_size: int = 1
    learning_rate: float = 1e-4
    hu_scale: float = 1000.0  # network input = clip(HU / hu_scale, -1, 3)
    rotation_degrees: float = 10.0  # S: uniform in ±this about each axis
    scale_range: tuple[float, float] = (0.9, 1.1)  # S: isotropic zoom
    elastic_voxels: float = 2.0  # S: standard deviation of the smooth displacement
    mirror_probability: float = 0.5  # S: left-right flip
    translate_fraction: float = 0.25  # T: the window is this fraction smaller in-plane (half that in z) and moves
    resample_mm: tuple[float, float] = (1.0, 2.0)  # R: random voxel size before resampling back to 1 mm
    seed: int = 0

    def __post_init__(self):
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {self.augmentation!r}")


PRESETS = {
    "tiny": Config(levels=3, base_filters=4, norm="group", input_size=(16, 24, 24), epochs=3, batch_size=2,
                   learning_rate=3e-3, elastic_voxels=1.0),
    "standard": Config(levels=4, base_filters=8, norm="group", input_size=(32, 48, 48), epochs=25, batch_size=2,
                       learning_rate=2e-3),
    "paper": Config(),
}


def build_network(config: Config) -> UNet3D:
    return UNet3D(1, 1, base_filters=config.base_filters, levels=config.levels, max_filters=config.max_filters,
                  norm=config.norm)


def _normalise(hu: np.ndarray, config: Config) -> torch.Tensor:
    return torch.from_numpy(np.clip(hu / config.hu_scale, -1.0, 3.0)).float()[None, None]


def augment(image: torch.Tensor, mask: torch.Tensor, *, config: Config, generator: torch.Generator,
            voxel_mm: float = 1.0):
    """Apply the families named in ``config.augmentation`` to one (1, 1, D, H, W) image and (1, D, H, W) mask on
    the case's own grid of ``voxel_mm`` voxels (1 mm for the task's full-size patches)."""
    def uniform(low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=generator).item()

    families = config.augmentation
    if "S" in families:
        limit = math.radians(config.rotation_degrees)
        matrix = rotation_matrix(tuple(uniform(-limit, limit) for _ in range(3))) / uniform(*config.scale_range)
        if torch.rand((), generator=generator).item() < config.mirror_probability:
            matrix = matrix @ torch.diag(torch.tensor([-1.0, 1.0, 1.0]))  # flip x (left-right)
        elastic = None
        if config.elastic_voxels > 0:
            elastic = elastic_field(tuple(image.shape[2:]), magnitude=config.elastic_voxels, control=4,
                                    generator=generator)
        image, mask = warp(image, mask, matrix=matrix, elastic=elastic)
    if "R" in families:
        factor = uniform(*config.resample_mm) / voxel_mm  # a voxel size at or below the grid's changes nothing
        if factor > 1.0:
            image = degrade_resolution(image, factor)
    if "T" in families:
        image, mask = moved_window(image, mask, fraction=config.translate_fraction, generator=generator)
    return image, mask


def window_shape(patch_shape: tuple[int, ...], fraction: float) -> tuple[int, int, int]:
    """The (z, y, x) size of a T window cut from a patch of ``patch_shape``: ``1 − fraction`` of each in-plane extent
    and ``1 − fraction / 2`` of the z extent."""
    keep = (1.0 - fraction / 2, 1.0 - fraction, 1.0 - fraction)
    z, y, x = (max(1, round(n * k)) for n, k in zip(patch_shape, keep))
    return z, y, x


def moved_window(image: torch.Tensor, mask: torch.Tensor, *, fraction: float, generator: torch.Generator):
    """Crop one window of real anatomy at a random position: ``1 − fraction`` of the in-plane extent and
    ``1 − fraction / 2`` of the z extent of the (1, 1, D, H, W) image and (1, D, H, W) mask, so that a body centred
    in the patch ends up off-centre by up to ``fraction / 2`` of the extent (a quarter of ``fraction`` in z)."""
    size = image.shape[2:]
    window = window_shape(tuple(size), fraction)
    starts = [int(torch.randint(0, n - w + 1, (), generator=generator)) for n, w in zip(size, window)]
    region = tuple(slice(a, a + w) for a, w in zip(starts, window))
    return image[(slice(None), slice(None), *region)], mask[(slice(None), *region)]


def _to_network_grid(image: torch.Tensor, mask: torch.Tensor | None, config: Config,
                     patch_shape: tuple[int, ...] | None = None):
    """Resize to the grid the network sees: ``config.input_size`` for a whole patch of ``patch_shape`` (default: the
    image's own), and the same voxel scale for a window cut from such a patch (T augmentation)."""
    size = config.input_size
    if patch_shape is not None and tuple(image.shape[2:]) != tuple(patch_shape):
        size = tuple(max(1, round(n * w / p)) for n, w, p in zip(config.input_size, image.shape[2:], patch_shape))
    image = F.interpolate(image, size=size, mode="trilinear", align_corners=False)
    if mask is not None:
        mask = F.interpolate(mask[:, None].float(), size=size, mode="nearest")[:, 0]
    return image, mask


def train(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    device = resolve_device(device)
    seed_everything(config.seed)
    generator = torch_generator(config.seed)
    cases = []
    for case_id in case_ids(data_dir):
        reference = input_image(data_dir, case_id)
        hu = array(reference)
        mask = torch.from_numpy(array(ground_truth_image(data_dir, case_id)) > 0.5).long()[None]
        if mask.shape[1:] != hu.shape:
            raise ValueError(f"{data_dir}: case {case_id}: mask shape {tuple(mask.shape[1:])} differs from the "
                             f"image's {hu.shape}")
        cases.append((_normalise(hu, config), mask, float(np.mean(reference.GetSpacing()))))
    if not cases:
        raise ValueError(f"{data_dir}: the training set has no cases")
    net = build_network(config).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    stepper = GradScalerStep(device)
    losses = []
    for _ in tqdm(range(config.epochs), desc=f"unet3d-{config.augmentation.lower()}", disable=not progress):
        order = torch.randperm(len(cases), generator=generator).tolist()
        epoch_losses = []
        for start in range(0, len(order), config.batch_size):
            images, masks = [], []
            for index in order[start: start + config.batch_size]:
                image, mask, voxel_mm = cases[index]
                patch_shape = tuple(image.shape[2:])
                image, mask = augment(image, mask, config=config, generator=generator, voxel_mm=voxel_mm)
                image, mask = _to_network_grid(image, mask, config, patch_shape)
                images.append(image)
                masks.append(mask)
            images = torch.cat(images).to(device)
            masks = torch.cat(masks).float()[:, None].to(device)
            net.train()
            with autocast(device):
                logits = net(images)
            loss = soft_dice_loss(torch.sigmoid(logits.float()), masks)
            stepper.step(loss, optimiser)
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
    return {"state": {k: v.cpu() for k, v in net.state_dict().items()}, "losses": losses, "config": asdict(config)}


def predict(*, checkpoint: dict, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Segment every case of ``data_dir/inputs``: a uint8 SimpleITK mask on the input's own grid."""
    device = resolve_device(device)
    net = build_network(config).to(device)
    net.load_state_dict(checkpoint["state"])
    net.eval()
    predictions = {}
    for case_id in tqdm(case_ids(data_dir), desc="predict", disable=not progress):
        reference = input_image(data_dir, case_id)
        hu = array(reference)
        image = _normalise(hu, config)
        if "T" in config.augmentation:
            probability = _windowed_probability(net, image, config=config, device=device)
        else:
            probability = _probability(net, image, config=config, device=device, patch_shape=hu.shape)
        predictions[case_id] = label_image_like((probability[0, 0] > 0.5).numpy(), reference)
    return predictions


def _probability(net, image: torch.Tensor, *, config: Config, device, patch_shape) -> torch.Tensor:
    """Foreground probability of one (1, 1, D, H, W) patch or window, on its own grid."""
    grid_image, _ = _to_network_grid(image, None, config, tuple(patch_shape))
    with torch.no_grad(), autocast(device):
        probability = torch.sigmoid(net(grid_image.to(device)).float()).cpu()
    return F.interpolate(probability, size=tuple(image.shape[2:]), mode="trilinear", align_corners=False)


def _windowed_probability(net, image: torch.Tensor, *, config: Config, device) -> torch.Tensor:
    """A T-trained network predicts as it was trained: windows of the training window's size (and so the same
    padding inside the network), placed every half window over the patch; overlapping voxels get the mean."""
    shape = tuple(image.shape[2:])
    window = window_shape(shape, config.translate_fraction)
    total, count = torch.zeros((1, 1, *shape)), torch.zeros(shape)
    for z in window_starts(shape[0], window[0], max(1, window[0] // 2)):
        for y in window_starts(shape[1], window[1], max(1, window[1] // 2)):
            for x in window_starts(shape[2], window[2], max(1, window[2] // 2)):
                box = (slice(z, z + window[0]), slice(y, y + window[1]), slice(x, x + window[2]))
                crop = image[(slice(None), slice(None), *box)]
                total[(slice(None), slice(None), *box)] += _probability(net, crop, config=config, device=device,
                                                                        patch_shape=shape)
                count[box] += 1
    return total / count
