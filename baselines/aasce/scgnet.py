"""SCG-Net: spine-curve-guided Cobb-angle regression (Wang, Huang & Wang, CSI 2019, AASCE).

Paper -> this module:
- Sect. 2.1 (boundary segmentation): a U-Net-shaped encoder-decoder whose decoder receives skip connections only
  at the 1x and 4x levels, with a pyramid pooling block (PSPNet) at the bottom -> `BoundaryNet` (built from
  ``baselines.nn.unet.ConvBlock`` and ``baselines.nn.pyramid.PyramidPooling``). It predicts a score map of the two
  spine boundary curves.
- Sect. 3.1 (targets): the left corners of all vertebrae joined top to bottom, likewise the right corners, then
  dilated -> `spine_targets.boundary_mask` with ``boundary_width`` pixels.
- Sect. 2.2 (angle regression): a DenseNet takes the X-ray and the predicted boundary score map as two input
  channels and regresses the three angles directly (torchvision DenseNet, random init; ``densenet121`` in the
  paper preset, a small DenseNet layout on CPU).
- Sect. 3.1 (augmentation): only random crop and resize (`_crop_resize`), to keep the angle labels valid.
Differences: the paper does not give losses or optimiser; we use Dice + BCE for the boundary map and an L1 loss on
angles/45 for the regressor, with Adam. The regressor is trained on the boundary maps the trained segmentation
network predicts for the training images (so it sees at training time what it will see at test time).
Ablation switch ``inputs``: "image+boundary" (the paper), "image" (plain regression) or "boundary".
Automatic cropping (our addition, ``crop``; the challenge's test images show more of the body than its training
images): training images are cropped to the landmark span plus ``crop_margin`` in the network's aspect ratio; at test
time the boundary network runs on the whole image, the rows and columns of its boundary map fix the same kind of
crop, and both networks run again on it (not with ``inputs="image"``, which has no boundary network).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from baselines.aasce.common import crop_to_landmarks, crop_to_mask
from baselines.data import load_cases
from baselines.nn.backbones import classifier, small_densenet
from baselines.nn.pyramid import PyramidPooling
from baselines.nn.spine_targets import boundary_mask
from baselines.nn.training import autocast, fit, resolve_device, seed_everything
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import ConvBlock

TASK = "aasce-cobb"
PAPER = "Wang, Huang & Wang: Spinal Curve Guide Network (SCG-Net) for Cobb angles (CSI 2019, AASCE)"
ANGLE_SCALE = 45.0
INPUTS = ("image+boundary", "image", "boundary")


@dataclass(frozen=True)
class Config:
    height: int = 512
    width_px: int = 256
    base_channels: int = 32
    boundary_width: int = 5
    regressor: str = "densenet121"  # or "densenet-small" (growth 8, `dense_blocks` blocks of 2 layers)
    dense_blocks: int = 4
    inputs: str = "image+boundary"
    seg_epochs: int = 60
    reg_epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    crop_augment: float = 0.1  # random crop removes up to this fraction of each side before resizing back
    crop: bool = True  # automatic spine crop from the boundary map
    crop_margin: float = 0.05
    seed: int = 0

    def __post_init__(self):
        if self.inputs not in INPUTS:
            raise ValueError(f"inputs must be one of {INPUTS}, got {self.inputs!r}")


PRESETS = {
    "tiny": Config(
        height=32,
        width_px=16,
        base_channels=4,
        boundary_width=1,
        regressor="densenet-small",
        dense_blocks=2,
        seg_epochs=2,
        reg_epochs=2,
        batch_size=4,
        lr=3e-3,
    ),
    "standard": Config(
        height=96,
        width_px=48,
        base_channels=8,
        boundary_width=2,
        regressor="densenet-small",
        dense_blocks=3,
        seg_epochs=15,
        reg_epochs=30,
        batch_size=8,
        lr=2e-3,
    ),
    "paper": Config(),
}


class BoundaryNet(nn.Module):
    """Encoder (4 levels, 3 poolings: strides 1, 2, 4, 8) -> pyramid pooling -> decoder that upsamples to 4x,
    fuses the 4x skip, upsamples to 1x and fuses the 1x skip; one output channel (boundary logit)."""

    def __init__(self, base_channels: int):
        super().__init__()
        c = base_channels
        self.enc1, self.enc2, self.enc3, self.enc4 = (
            ConvBlock(1, c),
            ConvBlock(c, 2 * c),
            ConvBlock(2 * c, 4 * c),
            ConvBlock(4 * c, 8 * c),
        )
        self.pool = PyramidPooling(8 * c, bins=(1, 2, 3, 6))
        self.reduce = ConvBlock(self.pool.out_channels, 4 * c)
        self.fuse4 = ConvBlock(8 * c, 2 * c)
        self.fuse1 = ConvBlock(3 * c, c)
        self.head = nn.Conv2d(c, 1, 1)

    def forward(self, x):
        height, width = x.shape[-2:]
        x = F.pad(x, (0, (-width) % 8, 0, (-height) % 8))
        s1 = self.enc1(x)
        s4 = self.enc3(F.max_pool2d(self.enc2(F.max_pool2d(s1, 2)), 2))
        bottom = self.reduce(self.pool(self.enc4(F.max_pool2d(s4, 2))))
        y = self.fuse4(
            torch.cat([F.interpolate(bottom, size=s4.shape[-2:], mode="bilinear", align_corners=False), s4], 1)
        )
        y = self.fuse1(torch.cat([F.interpolate(y, size=s1.shape[-2:], mode="bilinear", align_corners=False), s1], 1))
        return self.head(y)[..., :height, :width]


def _regressor(config: Config) -> nn.Module:
    channels = 2 if config.inputs == "image+boundary" else 1
    if config.regressor == "densenet-small":
        return small_densenet(in_channels=channels, num_outputs=3, blocks=config.dense_blocks)
    return classifier(config.regressor, in_channels=channels, num_outputs=3)


def _regressor_input(images: torch.Tensor, boundary: torch.Tensor, inputs: str) -> torch.Tensor:
    if inputs == "image":
        return images[:, None]
    if inputs == "boundary":
        return boundary[:, None]
    return torch.stack([images, boundary], dim=1)


def _crop_resize(batch: dict, rng: np.random.Generator, *, fraction: float) -> dict:
    """Random crop (up to `fraction` off each side) resized back to the full size, the same crop for every
    image-shaped array of a case. Angles are kept: a moderate crop-and-resize barely changes them."""
    out = {key: value.copy() for key, value in batch.items()}
    first = next(iter(batch.values()))
    height, width = first.shape[-2:]
    for index in range(len(first)):
        top, bottom = (rng.uniform(0, fraction, 2) * height).astype(int)
        left, right = (rng.uniform(0, fraction, 2) * width).astype(int)
        for key, value in batch.items():
            if value.ndim == 3 and value.shape[-2:] == (height, width):
                crop = value[index, top : height - bottom, left : width - right].astype(np.float32)
                out[key][index] = np.asarray(Image.fromarray(crop, mode="F").resize((width, height), Image.BILINEAR))
    return out


def _segmentation_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    logits = logits.float()[:, 0]
    probability = torch.sigmoid(logits)
    dice = 1 - (2 * (probability * target).sum() + 1) / (probability.sum() + target.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, target) + dice


def _boundary_maps(net: BoundaryNet, images: np.ndarray, device: torch.device, batch_size: int) -> np.ndarray:
    net.eval()
    out = []
    with torch.no_grad(), autocast(device):
        for start in range(0, len(images), batch_size):
            batch = torch.as_tensor(images[start : start + batch_size], device=device)[:, None]
            out.append(torch.sigmoid(net(batch).float())[:, 0].cpu().numpy())
    return np.concatenate(out)


def train(*, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    size = (config.height, config.width_px)
    cases = load_cases(data_dir, size=size, ground_truth=True)
    if config.crop and config.inputs != "image":
        cases = [crop_to_landmarks(c, margin=config.crop_margin, size=size) for c in cases]
    images = np.stack([c.image for c in cases])
    boundaries = np.stack([boundary_mask(c.landmarks, size, width=config.boundary_width) for c in cases])
    angles = np.stack([c.angles for c in cases]).astype(np.float32)
    def augment(b, r):
        return _crop_resize(b, r, fraction=config.crop_augment)


    segmenter = BoundaryNet(config.base_channels).to(device)
    seg_losses = []
    if config.inputs != "image":
        optimiser = torch.optim.Adam(segmenter.parameters(), lr=config.lr)
        segmenter.train()
        seg_losses = fit(
            segmenter.parameters(),
            arrays={"images": images, "boundary": boundaries},
            epochs=config.seg_epochs,
            batch_size=config.batch_size,
            optimiser=optimiser,
            device=device,
            rng=rng,
            augment=augment,
            loss_fn=lambda b: _segmentation_loss(segmenter(b["images"][:, None]), b["boundary"]),
            desc="scg-net boundary",
            progress=progress,
        )
        predicted = _boundary_maps(segmenter, images, device, config.batch_size)
    else:
        predicted = np.zeros_like(images)

    regressor = _regressor(config).to(device)
    optimiser = torch.optim.Adam(regressor.parameters(), lr=config.lr)
    regressor.train()
    reg_losses = fit(
        regressor.parameters(),
        arrays={"images": images, "boundary": predicted, "angles": angles / ANGLE_SCALE},
        epochs=config.reg_epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        augment=augment,
        desc="scg-net regression",
        progress=progress,
        loss_fn=lambda b: F.l1_loss(
            regressor(_regressor_input(b["images"], b["boundary"], config.inputs)).float(), b["angles"]
        ),
    )
    return {
        "state": {"segmenter": segmenter.state_dict(), "regressor": regressor.state_dict()},
        "losses": reg_losses,
        "segmentation_losses": seg_losses,
        "config": asdict(config),
    }


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    segmenter = BoundaryNet(config.base_channels).to(device)
    segmenter.load_state_dict(checkpoint["state"]["segmenter"])
    regressor = _regressor(config).to(device)
    regressor.load_state_dict(checkpoint["state"]["regressor"])
    regressor.eval()
    out = {}
    size = (config.height, config.width_px)
    for case in progress_bar(
        load_cases(data_dir, size=size, ground_truth=False), enabled=progress, desc="scg-net predict"
    ):
        image = case.image[None]
        boundary = _boundary_maps(segmenter, image, device, 1) if config.inputs != "image" else np.zeros_like(image)
        if config.crop and config.inputs != "image":
            image = crop_to_mask(case, boundary[0], margin=config.crop_margin, size=size).image[None]
            boundary = _boundary_maps(segmenter, image, device, 1)
        with torch.no_grad(), autocast(device):
            x = _regressor_input(
                torch.as_tensor(image, device=device), torch.as_tensor(boundary, device=device), config.inputs
            )
            angles = regressor(x).float().clamp(min=0) * ANGLE_SCALE
        out[case.id] = {"angles": [float(a) for a in angles[0].cpu()]}
    return out
