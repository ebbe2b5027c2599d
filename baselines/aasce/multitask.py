"""Multi-task direct Cobb-angle regression with pyramidal feature aggregation (Wang, Wang & Liu, CSI 2019, AASCE).

Paper -> this module:
- Sect. 2.1 (framework): a U-Net-style encoder-decoder whose encoder is VGG11 (configuration "A": 64, M, 128, M,
  256, 256, M, 512, 512, M, 512, 512) trained from scratch -> `MultiTaskNet`. The decoder's largest map gives
  the spine mask through a softmax (the mask branch). Pyramidal feature aggregation (PFA): global average pooling
  of the encoder's last map and of every decoder stage except the last, concatenated and fed to one dense layer
  that outputs the three angles. Without PFA only the encoder's pooled vector feeds the dense layer.
- Eq. 1-3 (loss): Dice loss on the mask plus a SMAPE loss on the angles. The paper writes the angle term as
  "1 - SMAPE"; minimising that would maximise the error, so we minimise the SMAPE fraction itself (in [0, 1]).
- Sect. 2.2 (pre-processing): aspect-preserving resize with padding (`baselines.data.letterbox`) and random shifts of
  the resized image as augmentation.
- Sect. 3.1: Adam, learning rate 1e-4 (paper preset); 10 % of the training cases held out for early stopping.
- Table 1 ablations as options: ``encoder`` "vgg11" | "resnet50" (torchvision, random init), ``mask_branch``,
  ``pfa``.
- Automatic cropping (our addition, ``crop``): the challenge's test images show more of the body than its training
  images. Training images are cropped to the landmark span (plus ``crop_margin``) in the network's aspect ratio; at
  test time the network first runs on the whole image, its mask branch locates the spine, the image is cropped the
  same way and the angles are read from the second pass; ``crop_rounds`` repeats the crop on each pass's mask (the
  first crop is loose, as the spine is small in the whole test image); with ``length_prior`` the mask is first cut to
  the T1-L5 length the training proportions allow (``common.Framing.trim_mask``), since the network may follow the
  spine into the neck and skull, which cropped training images never show. Without the mask branch there is no crop.
Differences: no pretrained weights (the paper did not use them either); the mask target is the spine outline drawn
from the 68 landmarks (`spine_targets.spine_mask`), since the paper does not say how its masks were made; widths
are scaled by ``width`` so the tiny/standard presets run on a CPU.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchvision
from torch import nn
from torch.nn import functional as F

from baselines.aasce import common
from baselines.aasce.common import crop_to_landmarks, crop_to_mask, shift_batch
from baselines.data import load_cases
from baselines.nn.spine_targets import spine_mask
from baselines.nn.training import autocast, fit, resolve_device, seed_everything
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import conv_bn_relu

TASK = "aasce-cobb"
PAPER = (
    "Wang, Wang & Liu: multi-task learning with pyramidal feature aggregation for direct Cobb angles (CSI 2019, AASCE)"
)
ANGLE_SCALE = 45.0  # the network regresses angles / ANGLE_SCALE


@dataclass(frozen=True)
class Config:
    height: int = 256
    width_px: int = 128
    width: float = 1.0  # channel multiplier of VGG11
    encoder: str = "vgg11"  # "vgg11" | "resnet50"
    mask_branch: bool = True
    pfa: bool = True
    epochs: int = 100
    batch_size: int = 8
    lr: float = 1e-4
    max_shift: float = 0.05  # random shift as a fraction of the image size
    validation_fraction: float = 0.1
    patience: int = 10  # early stopping, in epochs
    crop: bool = True  # automatic spine crop from the mask branch (needs mask_branch)
    crop_margin: float = 0.05
    crop_rounds: int = 3  # passes of the automatic crop, each on the previous crop
    length_prior: bool = True  # cut the mask branch's spine to the training proportions before cropping
    seed: int = 0


PRESETS = {
    "tiny": Config(height=32, width_px=16, width=0.0625, epochs=3, batch_size=4, lr=3e-3, validation_fraction=0.0),
    "standard": Config(height=96, width_px=48, width=0.125, epochs=30, batch_size=8, lr=2e-3, patience=8),
    "paper": Config(height=512, width_px=256, width=1.0, epochs=100, batch_size=8, lr=1e-4, patience=10),
}

VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512)


class _StagedEncoder(nn.Module):
    """An encoder made of ``self.stages``; returns every stage's output, shallow to deep."""

    def forward(self, x):
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class VGG11Encoder(_StagedEncoder):
    """VGG11 feature stages split at the max-pools; returns the five stage outputs (strides 1, 2, 4, 8, 16)."""

    def __init__(self, width: float):
        super().__init__()
        stages, layers, cin = [], [], 1
        for item in VGG11:
            if item == "M":
                stages.append(nn.Sequential(*layers))
                layers = [nn.MaxPool2d(2)]
            else:
                cout = max(4, int(item * width))
                layers.append(conv_bn_relu(cin, cout))
                cin = cout
        stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.channels = [stage[-1][0].out_channels for stage in stages]


class ResNet50Encoder(_StagedEncoder):
    """torchvision ResNet-50 (random initialisation, one input channel); stage outputs at strides 2, 4, 8, 16, 32."""

    def __init__(self, width: float):
        super().__init__()
        net = torchvision.models.resnet50(weights=None, width_per_group=max(4, int(64 * width)))
        net.conv1 = nn.Conv2d(1, 64, 7, stride=2, padding=3, bias=False)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(net.conv1, net.bn1, net.relu),
                nn.Sequential(net.maxpool, net.layer1),
                net.layer2,
                net.layer3,
                net.layer4,
            ]
        )
        with torch.no_grad():
            self.channels = [f.shape[1] for f in self.forward(torch.zeros(1, 1, 64, 64))]


class MultiTaskNet(nn.Module):
    """Encoder-decoder with a 2-class mask head and a PFA angle head (see module docstring)."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.encoder = (VGG11Encoder if config.encoder == "vgg11" else ResNet50Encoder)(config.width)
        chans = self.encoder.channels
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        cin = chans[-1]
        for skip in reversed(chans[:-1]):
            self.ups.append(nn.ConvTranspose2d(cin, skip, 2, stride=2))
            self.decoders.append(nn.Sequential(conv_bn_relu(2 * skip, skip), conv_bn_relu(skip, skip)))
            cin = skip
        self.mask_head = nn.Conv2d(cin, 2, 1)
        pooled = chans[-1] + (sum(reversed(chans[1:-1])) if config.pfa else 0)
        self.angle_head = nn.Linear(pooled, 3)

    def forward(self, x):
        features = self.encoder(x)
        y = features[-1]
        vectors = [y.mean(dim=(2, 3))]
        decoded = []
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(features[:-1])):
            y = up(y)
            y = F.interpolate(y, size=skip.shape[2:]) if y.shape[2:] != skip.shape[2:] else y
            y = decoder(torch.cat([y, skip], dim=1))
            decoded.append(y)
        if self.config.pfa:
            vectors += [d.mean(dim=(2, 3)) for d in decoded[:-1]]
        angles = F.softplus(self.angle_head(torch.cat(vectors, dim=1))) * ANGLE_SCALE
        mask_logits = self.mask_head(y)
        if mask_logits.shape[2:] != x.shape[2:]:
            mask_logits = F.interpolate(mask_logits, size=x.shape[2:], mode="bilinear", align_corners=False)
        return angles, mask_logits


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - 2|X∩Y| / (|X| + |Y|) on the softmax foreground probability (soft Dice, batch-pooled)."""
    probability = logits.float().softmax(dim=1)[:, 1]
    intersection = (probability * target).sum()
    return 1.0 - (2.0 * intersection + eps) / (probability.sum() + target.sum() + eps)


def smape_loss(predicted: torch.Tensor, truth: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """mean over cases of sum|A - B| / sum(A + B) (the SMAPE fraction, 0 = perfect)."""
    return ((predicted - truth).abs().sum(dim=1) / ((predicted + truth).sum(dim=1) + eps)).mean()


def _loss(model, config, images, masks, angles):
    predicted, mask_logits = model(images[:, None])
    loss = smape_loss(predicted.float(), angles)
    if config.mask_branch:
        loss = loss + dice_loss(mask_logits, masks)
    return loss


def train(*, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    size = (config.height, config.width_px)
    cases = load_cases(data_dir, size=size, ground_truth=True)
    if config.crop and config.mask_branch:
        cases = [crop_to_landmarks(c, margin=config.crop_margin, size=size) for c in cases]
    arrays = {
        "images": np.stack([c.image for c in cases]),
        "masks": np.stack([spine_mask(c.landmarks, size) for c in cases]),
        "angles": np.stack([c.angles for c in cases]).astype(np.float32),
    }
    order = rng.permutation(len(cases))
    n_val = int(round(config.validation_fraction * len(cases))) if len(cases) >= 10 else 0
    held_out = {key: torch.as_tensor(value[order[:n_val]], device=device) for key, value in arrays.items()}
    fit_arrays = {key: value[order[n_val:]] for key, value in arrays.items()}

    model = MultiTaskNet(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    losses, best, best_state, stale = [], float("inf"), None, 0
    for _ in progress_bar(range(config.epochs), enabled=progress, desc="multi-task"):
        model.train()
        losses += fit(
            model.parameters(),
            arrays=fit_arrays,
            epochs=1,
            batch_size=config.batch_size,
            optimiser=optimiser,
            device=device,
            rng=rng,
            progress=False,
            loss_fn=lambda b: _loss(model, config, b["images"], b["masks"], b["angles"]),
            augment=lambda b, r: shift_batch(b, r, fraction=config.max_shift),
        )
        if not n_val:
            continue
        model.eval()
        with torch.no_grad(), autocast(device):
            score = float(_loss(model, config, held_out["images"], held_out["masks"], held_out["angles"]))
        if score < best:
            best, best_state, stale = score, copy.deepcopy(model.state_dict()), 0
        else:
            stale += 1
            if stale >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    return {
        "state": {k: v.cpu() for k, v in model.state_dict().items()},
        "losses": losses,
        "config": asdict(config),
        "framing": common.framing_from_cases(cases).to_dict(),
    }


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    model = MultiTaskNet(config).to(device)
    model.load_state_dict(checkpoint["state"])
    model.eval()
    out = {}
    size = (config.height, config.width_px)
    framing = common.Framing(**checkpoint["framing"]) if config.length_prior and "framing" in checkpoint else None

    def run(image):
        with torch.no_grad(), autocast(device):
            angles, mask_logits = model(torch.as_tensor(image, device=device)[None, None])
        return angles.float()[0].cpu().numpy(), mask_logits.float().softmax(dim=1)[0, 1].cpu().numpy()

    for case in progress_bar(
        load_cases(data_dir, size=size, ground_truth=False), enabled=progress, desc="multi-task predict"
    ):
        angles, mask = run(case.image)
        for _ in range(config.crop_rounds if config.crop and config.mask_branch else 0):
            if framing is not None:
                mask = framing.trim_mask(mask > 0.5)
            case = crop_to_mask(case, mask, margin=config.crop_margin, size=size)
            angles, mask = run(case.image)
        out[case.id] = {"angles": [float(a) for a in angles]}
    return out
