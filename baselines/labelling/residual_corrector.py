"""Vertebra labelling in radiographs: a heatmap U-Net, optionally followed by the residual corrector (RC).

Follows Bayat et al., "Vertebral Labelling in Radiographs: Learning a Coordinate Corrector to Enforce Spinal Shape"
(CSI 2019):

- Sect. 2 Annotations: the target is a 25-channel image, one Gaussian exp(−‖x − μ_i‖² / 2σ²) per vertebra C1–L5
  (channels 1–24) and a background channel 0 equal to −max_i of the others. Vertebrae missing from a case's ground
  truth get an all-zero channel and no coordinate loss.
- Sect. 2 Architecture: a 2D U-Net (``baselines.nn.unet.UNet``) predicts the 25 channels; the RC turns channels
  1–24 into 2 × 24 coordinates with a soft-argmax (``baselines.nn.heatmaps.soft_argmax2d``) and adds the output of
  a fully-connected residual block (``ResidualCorrector``) that sees all 24 positions at once, so the spine's
  global shape can correct single vertebrae.
- Sect. 2 Training: image loss = squared L2 distance between target and predicted heatmaps + cross-entropy between
  the channel-wise softmax of the target and of the prediction; with the corrector, a Huber loss (threshold 1
  network-grid pixel) on the corrected coordinates is added and everything is trained end to end with Adam
  (learning rate 1e-4). The paper's "150 iterations" are read as 150 passes over the training set (``epochs``):
  150 optimiser steps of batch 4 would show each of its 100 images per view only six times, far too few at that
  learning rate. ``training_steps`` turns epochs into steps per view model (epochs × ⌈images of the larger view /
  batch⌉; batches are drawn at random, so an "epoch" is that many samples, not an exact pass). The ``tiny`` and
  ``standard`` presets count optimiser steps directly (``iterations``, with ``epochs=0``).
- Sect. 3: rotation augmentation by one of ±2°, ±5° (or none); one model per view (sagittal, coronal), as the paper
  trains on the two views separately. ``Config.corrector`` switches between the paper's "U-Net" and "U-Net + RC"
  rows.

Inference: U-Net alone reads each channel's maximum (with a quarter-pixel refinement) and reports the vertebrae
whose peak exceeds ``presence_threshold``; U-Net + RC reports the corrected coordinates of the same vertebrae.
Coordinates are mapped from the network grid to the input's pixel indices and then to physical millimetres with the
input image's own geometry (origin, spacing, direction).

Where it differs: no pretrained weights; generated radiograph phantoms instead of the in-house 122 patients; the
image is resized to a fixed network grid (``input_size``, smaller in ``tiny``/``standard``) rather than processed
at full size; the heatmap spread σ, the soft-argmax sharpness β and the corrector's width are not given in the paper
and are our choices.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from baselines.nn.heatmaps import gaussian_maps, heatmap_argmax, soft_argmax2d
from baselines.nn.training import GradScalerStep, autocast, resolve_device, seed_everything, state_to_cpu
from baselines.nn.unet import UNet
from baselines.report import note_fallback
from evaluators.layout import GROUND_TRUTH, INPUTS, VERTEBRA_NAMES, read_manifest

TASK = "vertebra-labelling-xr"
PAPER = "Bayat et al., vertebra labelling in radiographs with a learnt residual coordinate corrector (CSI 2019)"
VERTEBRAE = [VERTEBRA_NAMES[value] for value in range(1, 25)]  # C1..L5
VIEWS = ("sagittal", "coronal")


@dataclass(frozen=True)
class Config:
    #: Settings whose 0 means "use another setting" (baselines.presets.validate_config).
    ZERO_MEANS_DEFAULT: ClassVar[frozenset[str]] = frozenset({"epochs"})

    corrector: bool = True
    input_size: tuple[int, int] = (512, 256)  # (height, width) of the network grid
    base_channels: int = 32
    depth: int = 4
    sigma: float = 4.0  # Gaussian spread in network-grid pixels
    softargmax_beta: float = 50.0
    corrector_hidden: int = 256
    epochs: int = 150  # passes over the training set (the paper's "150 iterations"); 0: use ``iterations``
    iterations: int = 150  # optimiser steps per view model when ``epochs`` is 0
    batch_size: int = 4
    learning_rate: float = 1e-4
    rotations: tuple[float, ...] = (0.0, 2.0, -2.0, 5.0, -5.0)  # degrees, one drawn per sample
    presence_threshold: float = 0.1
    seed: int = 0


PRESETS = {
    "tiny": Config(input_size=(48, 16), base_channels=4, depth=2, sigma=1.0, corrector_hidden=32, epochs=0,
                   iterations=8, batch_size=2, learning_rate=3e-3),
    "standard": Config(input_size=(96, 40), base_channels=8, depth=3, sigma=3.0, corrector_hidden=128, epochs=0,
                       iterations=1500, batch_size=4, learning_rate=2e-3),
    "paper": Config(),
}


class ResidualCorrector(nn.Module):
    """c ↦ c + MLP(c) on the 2 × 24 coordinates, normalised to [0, 1] by the grid size inside the block."""

    def __init__(self, *, points: int, hidden: int, grid: tuple[int, int]):
        super().__init__()
        self.register_buffer("scale", torch.tensor([grid[1] - 1.0, grid[0] - 1.0]))
        self.mlp = nn.Sequential(
            nn.Linear(2 * points, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, 2 * points),
        )
        nn.init.zeros_(self.mlp[-1].weight)  # starts as the identity: the corrector learns a residual
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, coords: torch.Tensor) -> torch.Tensor:
        normalised = coords / self.scale
        correction = self.mlp(normalised.flatten(1)).view_as(coords)
        return (normalised + correction) * self.scale


class LabellingNet(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.unet = UNet(in_channels=1, out_channels=len(VERTEBRAE) + 1, base_channels=config.base_channels,
                         depth=config.depth)
        self.corrector = (
            ResidualCorrector(points=len(VERTEBRAE), hidden=config.corrector_hidden, grid=config.input_size)
            if config.corrector else None
        )
        self.beta = config.softargmax_beta

    def forward(self, image: torch.Tensor):
        """Heatmaps (N, 25, H, W) and, with the corrector, corrected coordinates (N, 24, 2) in grid pixels."""
        heatmaps = self.unet(image)
        if self.corrector is None:
            return heatmaps, None
        return heatmaps, self.corrector(soft_argmax2d(heatmaps[:, 1:], beta=self.beta))


def gaussian_targets(coords: torch.Tensor, present: torch.Tensor, *, size: tuple[int, int], sigma: float):
    """The 25-channel target: Gaussians at ``coords`` (N, 24, 2; grid pixels, (x, y)) for present vertebrae,
    background = −max over them."""
    gaussians = gaussian_maps(coords.float(), size, sigma=sigma) * present[..., None, None].float()
    return torch.cat([-gaussians.amax(dim=1, keepdim=True), gaussians], dim=1)


def image_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """‖Y − Ỹ‖² (summed over channels and pixels, as the paper writes it; averaged over the batch) + the
    cross-entropy H(softmax(Y), softmax(Ỹ)) over channels (averaged over pixels and batch). The per-image sum keeps
    the few Gaussian pixels from being drowned by the background, which a per-pixel mean lets the net predict as
    flat zero."""
    l2 = (target - predicted).square().flatten(1).sum(dim=1).mean()
    cross_entropy = -(torch.softmax(target, dim=1) * torch.log_softmax(predicted, dim=1)).sum(dim=1).mean()
    return l2 + cross_entropy


def coordinate_loss(predicted: torch.Tensor, target: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Huber (threshold 1) on the present vertebrae's coordinates."""
    mask = present[..., None].expand_as(target)
    if not mask.any():
        return predicted.sum() * 0.0
    return F.huber_loss(predicted[mask], target[mask], delta=1.0)


def _read_case(data_dir: Path, case_id: str) -> tuple[sitk.Image, str]:
    folder = data_dir / INPUTS / case_id
    image = sitk.ReadImage(str(folder / "image.nii.gz"))
    if image.GetDimension() != 2:
        raise ValueError(f"{folder / 'image.nii.gz'}: expected a 2D radiograph, got {image.GetDimension()}D")
    meta_path = folder / "meta.json"
    view = json.loads(meta_path.read_text())["view"] if meta_path.is_file() else "coronal"
    if view not in VIEWS:
        raise ValueError(f"{meta_path}: view must be one of {VIEWS}, got {view!r}")
    return image, view


def _network_image(image: sitk.Image, config: Config) -> torch.Tensor:
    pixels = torch.from_numpy(sitk.GetArrayFromImage(image).astype(np.float32))
    pixels = (pixels - pixels.mean()) / (pixels.std() + 1e-6)
    return F.interpolate(pixels[None, None], size=config.input_size, mode="bilinear", align_corners=False)[0]


def _index_to_grid(index: np.ndarray, image: sitk.Image, config: Config) -> np.ndarray:
    """Continuous pixel index (x, y) of the input -> network-grid pixel (x, y) (pixel centres aligned)."""
    ratio = np.array([config.input_size[1] / image.GetSize()[0], config.input_size[0] / image.GetSize()[1]])
    return (index + 0.5) * ratio - 0.5


def _grid_to_physical(grid: np.ndarray, image: sitk.Image, config: Config) -> list[float]:
    ratio = np.array([config.input_size[1] / image.GetSize()[0], config.input_size[0] / image.GetSize()[1]])
    index = (grid + 0.5) / ratio - 0.5
    return [float(v) for v in image.TransformContinuousIndexToPhysicalPoint(tuple(float(i) for i in index))]


def _rotate(image: torch.Tensor, coords: torch.Tensor, degrees: float):
    """Rotate a (1, H, W) image and its (24, 2) grid coordinates by ``degrees`` about the image centre (pixel
    units, so the rotation is rigid on the grid)."""
    if degrees == 0:
        return image, coords
    _, height, width = image.shape
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2])
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                            indexing="ij")
    dx, dy = xs - centre[0], ys - centre[1]
    # output pixel p reads the input at R(−θ)(p − c) + c
    src_x, src_y = cos * dx + sin * dy + centre[0], -sin * dx + cos * dy + centre[1]
    grid = torch.stack([(2 * src_x + 1) / width - 1, (2 * src_y + 1) / height - 1], dim=-1)[None]
    rotated = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    d = coords - centre
    new = torch.stack([cos * d[:, 0] - sin * d[:, 1], sin * d[:, 0] + cos * d[:, 1]], dim=-1) + centre
    return rotated, new


def _load_training(data_dir: Path, config: Config) -> dict[str, list]:
    by_view: dict[str, list] = {}
    for case_id in read_manifest(data_dir).case_ids:
        image, view = _read_case(data_dir, case_id)
        truth_path = data_dir / GROUND_TRUTH / f"{case_id}.json"
        centroids = json.loads(truth_path.read_text())["centroids"]
        coords, present = torch.zeros(len(VERTEBRAE), 2), torch.zeros(len(VERTEBRAE), dtype=torch.bool)
        for i, name in enumerate(VERTEBRAE):
            if name in centroids:
                index = np.array(image.TransformPhysicalPointToContinuousIndex([float(v) for v in centroids[name]]))
                coords[i] = torch.from_numpy(_index_to_grid(index, image, config)).float()
                present[i] = True
        by_view.setdefault(view, []).append((_network_image(image, config), coords, present))
    if not by_view:
        raise ValueError(f"{data_dir}: the training set has no cases")
    return by_view


def training_steps(config: Config, cases_per_view: dict[str, int]) -> int:
    """Optimiser steps of each view model: ``epochs`` passes of the larger view's images, or ``iterations``."""
    if config.epochs:
        return config.epochs * math.ceil(max(cases_per_view.values()) / config.batch_size)
    return config.iterations


def train(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    data_dir, device = Path(data_dir), resolve_device(device)
    rng = seed_everything(config.seed)
    by_view = _load_training(data_dir, config)
    models = {view: LabellingNet(config).to(device) for view in by_view}
    optimisers = {view: torch.optim.Adam(models[view].parameters(), lr=config.learning_rate) for view in by_view}
    steppers = {view: GradScalerStep(device) for view in by_view}
    losses = []
    steps = training_steps(config, {view: len(cases) for view, cases in by_view.items()})
    for _ in tqdm(range(steps), desc="labelling", disable=not progress):
        step_losses = []
        for view, cases in by_view.items():
            images, coords, present = [], [], []
            for index in rng.integers(len(cases), size=config.batch_size):
                image, c, p = cases[index]
                image, c = _rotate(image, c, float(rng.choice(config.rotations)))
                images.append(image)
                coords.append(c)
                present.append(p)
            images, coords, present = torch.stack(images), torch.stack(coords), torch.stack(present)
            target = gaussian_targets(coords, present, size=config.input_size, sigma=config.sigma)
            net = models[view].train()
            with autocast(device):
                heatmaps, corrected = net(images.to(device))
            loss = image_loss(heatmaps.float(), target.to(device))
            if corrected is not None:
                loss = loss + coordinate_loss(corrected.float(), coords.to(device), present.to(device))
            steppers[view].step(loss, optimisers[view])
            step_losses.append(loss.item())
        losses.append(float(np.mean(step_losses)))
    return {
        "state": {view: state_to_cpu(model) for view, model in models.items()},
        "losses": losses,
        "config": asdict(config),
    }


def predict(*, checkpoint: dict, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """``{case_id: {"centroids": {name: [x, y] mm}}}`` for the vertebrae found in each input radiograph."""
    data_dir, device = Path(data_dir), resolve_device(device)
    models = {}
    for view, state in checkpoint["state"].items():
        models[view] = LabellingNet(config).to(device).eval()
        models[view].load_state_dict(state)
    predictions = {}
    for case_id in tqdm(read_manifest(data_dir).case_ids, desc="predict", disable=not progress):
        image, view = _read_case(data_dir, case_id)
        # a view absent from training uses the other view's model
        if view not in models:
            note_fallback(case_id, "other-view-model")
        net = models[view] if view in models else next(iter(models.values()))
        with torch.no_grad(), autocast(device):
            heatmaps, corrected = net(_network_image(image, config)[None].to(device))
        peaks_xy, peaks = heatmap_argmax(heatmaps[:, 1:].float())
        coords = (corrected if corrected is not None else peaks_xy)[0].float().cpu().numpy()
        found = peaks[0].cpu().numpy() > config.presence_threshold
        predictions[case_id] = {
            "centroids": {
                name: _grid_to_physical(coords[i], image, config) for i, name in enumerate(VERTEBRAE) if found[i]
            }
        }
    return predictions
