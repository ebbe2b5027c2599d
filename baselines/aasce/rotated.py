"""Vertebra landmarks through rotated region proposals (Tao, Xu, Wu et al., PingAn, CSI 2019, AASCE).

Paper -> this module:
- Sect. 2.1 (stage one): a ResNet + FPN backbone (``baselines.nn.detection.fpn_backbone``; torchvision ResNet-50 in
  the paper preset, the compact residual network on CPU) with a shared convolutional head on every pyramid level
  scoring rotated anchors: one scale per level (5 levels = the paper's 5 scales), 3 aspect ratios and 3 rotation
  angles -> `RotatedProposalNet`. Training images get random brightness/contrast changes (``intensity``; the paper
  names no augmentation, but the test images' exposure differs). Boxes are (x, y, w, h, theta) with theta in (-pi/2,
  pi/2] the tilt of the box
  against the x axis; offsets and log sizes are regressed with a smooth-L1 loss as in Faster/Mask R-CNN, the angle
  offset with a mean-squared loss. Anchors are matched to the 17 ground-truth vertebra boxes
  (`spine_targets.rotated_boxes`) by the angle-aware IoU approximation (IoU of the unrotated boxes times
  |cos(angle difference)|), which also drives the rotated non-maximum suppression at inference.
- Sect. 2.2 (stage two): rotated RoI Align -> `rotated_crops` samples a fixed-size patch aligned with each rotated
  box (``F.affine_grid`` + ``F.grid_sample``, bilinear, like RoI Align), and a fully convolutional network
  (`CornerFCN`) predicts one heatmap per corner (TL, TR, BL, BR) in the box frame; the peaks are mapped back
  through the inverse rotation. The FCN is trained on ground-truth boxes with random jitter of position, size and
  angle, so it learns to correct imperfect proposals.
- Sect. 3.1 (spine region isolation): horizontal and vertical intensity projections (`SpineIsolation`): the column
  projection finds the spine column, the row projection of a band around it is compared with thresholds estimated
  from the training set's spine rows (their 2nd and 98th percentiles), the longest run of rows inside them is the
  spine region, and the crop is widened or narrowed to the paper's locked height/width ratio of 3.5. Training
  images use the landmark span instead (the paper's training images were cropped by hand).
- Post-processing (Sect. 3.2: false-positive suppression with the spine midline): boxes whose centre lies far from
  a robust polynomial midline through the box centres are discarded; of the rest, the 17 consecutive boxes (top to
  bottom) with the largest total score are the vertebrae T1-L5; if fewer than 17 remain, the box parameters are
  interpolated along the column to 17. Angles come from the 68 corners with the official rules
  (``evaluators.cobb.cobb_angles``).
Differences: no ImageNet weights; stage two crops the image rather than the shared FPN features, so the FCN is
trained separately (the paper trains one end-to-end Mask R-CNN-like network); the spinal-cord segmentation of
Sect. 3.1 is replaced by the projection-based midline; a predicted corner further than ``corner_tolerance`` box
heights from the rotated box's own corner, and a vertebra whose predicted left and right corners coincide, take the
rotated box's corners (without this check stray FCN peaks on the test-domain phantoms dominated the error); sizes are
scaled down in the tiny/standard presets.
How often that fallback fires is recorded: a case where more than half of the 68 corners are the boxes' is noted
as the ``box-corners`` fallback in the run report (``baselines.report``), and a case with fewer than two kept boxes
as ``zeros``. ``corner_tolerance=inf`` turns the corner fallback off (``benchmarks/baselines_aasce.py`` reports that
row beside the method's).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from baselines.aasce.common import crop_to_landmarks, intensity_augment, spine_box
from baselines.data import Case, load_cases
from baselines.nn.detection import fpn_backbone
from baselines.nn.heatmaps import gaussian_maps, heatmap_argmax
from baselines.nn.rotated_roi import from_patch, rotated_crops, to_patch
from baselines.nn.spine_targets import box_to_corners, curve_x, repair_vertebrae, rotated_boxes, unusable_vertebrae
from baselines.nn.training import autocast, fit, resolve_device, seed_everything, torch_generator
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import conv_bn_relu
from baselines.report import note_fallback
from evaluators.cobb import cobb_angles

TASK = "aasce-cobb"
PAPER = "Tao, Xu, Wu, Zhang & Lv: landmark estimation via rotated vertebra proposals (CSI 2019, AASCE)"
N_VERTEBRAE = 17


@dataclass(frozen=True)
class Config:
    height: int = 1024
    width_px: int = 320
    backbone: str = "resnet50"
    base_channels: int = 16
    fpn_channels: int = 256
    anchor_size: float = 16.0  # on the stride-4 level; doubles per level
    ratios: tuple[float, ...] = (0.4, 0.6, 0.8)  # height / width
    anchor_angles: tuple[float, ...] = (-0.35, 0.0, 0.35)  # radians
    positive_iou: float = 0.5
    negative_iou: float = 0.3
    intensity: str = "bc"  # training augmentation: "bc" brightness/contrast, "gaussian" noise, "none"
    anchors_per_image: int = 256
    angle_weight: float = 1.0
    epochs: int = 60
    batch_size: int = 4
    lr: float = 1e-3
    patch: int = 56  # rotated RoI Align output size
    context: float = 1.6  # patch covers the box enlarged by this factor
    corner_sigma: float = 2.0  # pixels of the patch
    fcn_channels: int = 64
    fcn_epochs: int = 60
    corner_tolerance: float = 0.5  # box heights; a corner further from its box corner takes the box corner
    jitter: tuple[float, float, float] = (0.15, 0.1, 0.1)  # centre (of size), log-size, angle (rad)
    score_threshold: float = 0.3
    nms_iou: float = 0.3
    isolate: bool = True
    aspect: float = 3.5
    margin: float = 0.04  # of the crop height, above and below the spine
    band: float = 0.15  # half width of the spine band (fraction of the image width)
    seed: int = 0
    isolation: dict = field(default_factory=dict)  # thresholds estimated in train()


PRESETS = {
    "tiny": Config(
        height=64,
        width_px=32,
        backbone="compact",
        base_channels=4,
        fpn_channels=8,
        anchor_size=4.0,
        anchors_per_image=64,
        epochs=2,
        batch_size=4,
        lr=3e-3,
        patch=8,
        corner_sigma=1.0,
        fcn_channels=4,
        fcn_epochs=2,
    ),
    "standard": Config(
        height=160,
        width_px=64,
        backbone="compact",
        base_channels=8,
        fpn_channels=32,
        anchor_size=8.0,
        positive_iou=0.4,
        negative_iou=0.25,
        anchors_per_image=128,
        epochs=40,
        corner_tolerance=0.25,
        batch_size=4,
        lr=2e-3,
        patch=16,
        corner_sigma=1.5,
        fcn_channels=16,
        fcn_epochs=12,
    ),
    "paper": Config(),
}


# --------------------------------------------------------------------------------------------- rotated boxes


def wrap_angle(theta: torch.Tensor) -> torch.Tensor:
    """Map angles to (-pi/2, pi/2] (a box rotated by pi is the same box)."""
    return theta - torch.pi * torch.ceil(theta / torch.pi - 0.5)


def approx_rotated_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, M) angle-aware IoU of rotated boxes (x, y, w, h, theta): IoU of the boxes without rotation times
    |cos(theta_a - theta_b)|."""
    ax0, ay0, ax1, ay1 = a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2, a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2
    bx0, by0, bx1, by1 = b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    iw = (torch.minimum(ax1[:, None], bx1[None]) - torch.maximum(ax0[:, None], bx0[None])).clamp(min=0)
    ih = (torch.minimum(ay1[:, None], by1[None]) - torch.maximum(ay0[:, None], by0[None])).clamp(min=0)
    inter = iw * ih
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return inter / union.clamp(min=1e-6) * torch.cos(a[:, None, 4] - b[None, :, 4]).abs()


def encode(boxes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    return torch.stack(
        [
            (boxes[:, 0] - anchors[:, 0]) / anchors[:, 2],
            (boxes[:, 1] - anchors[:, 1]) / anchors[:, 3],
            torch.log(boxes[:, 2] / anchors[:, 2]),
            torch.log(boxes[:, 3] / anchors[:, 3]),
            wrap_angle(boxes[:, 4] - anchors[:, 4]),
        ],
        dim=1,
    )


def decode(deltas: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    deltas = deltas.float()
    return torch.stack(
        [
            anchors[:, 0] + deltas[:, 0] * anchors[:, 2],
            anchors[:, 1] + deltas[:, 1] * anchors[:, 3],
            anchors[:, 2] * torch.exp(deltas[:, 2].clamp(max=4)),
            anchors[:, 3] * torch.exp(deltas[:, 3].clamp(max=4)),
            wrap_angle(anchors[:, 4] + deltas[:, 4]),
        ],
        dim=1,
    )


def rotated_nms(boxes: torch.Tensor, scores: torch.Tensor, iou: float) -> torch.Tensor:
    """Greedy non-maximum suppression with `approx_rotated_iou`; indices of the kept boxes by decreasing score."""
    order = scores.argsort(descending=True)
    overlaps = approx_rotated_iou(boxes[order], boxes[order])
    keep = torch.ones(len(order), dtype=torch.bool)
    for i in range(len(order)):
        if keep[i]:
            keep[i + 1 :] &= overlaps[i, i + 1 :] <= iou
    return order[keep]


# --------------------------------------------------------------------------------------------- stage one


class RotatedProposalNet(nn.Module):
    """FPN backbone + a shared head giving, per level location and anchor, an objectness logit and 5 deltas."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.backbone = fpn_backbone(
            backbone=config.backbone, fpn_channels=config.fpn_channels, base_channels=config.base_channels
        )
        self.k = len(config.ratios) * len(config.anchor_angles)
        c = config.fpn_channels
        self.head = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True))
        self.out = nn.Conv2d(c, self.k * 6, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
        """(N, A, 6) outputs over all anchors and the (stride, rows, cols) of each level."""
        features = self.backbone((x - 0.5) / 0.25)
        outputs, levels = [], []
        for feature in features.values():
            n, _, rows, cols = feature.shape
            y = self.out(self.head(feature)).view(n, self.k, 6, rows, cols).permute(0, 3, 4, 1, 2)
            outputs.append(y.reshape(n, -1, 6))
            levels.append((x.shape[-2] // rows, rows, cols))
        return torch.cat(outputs, dim=1), levels


def make_anchors(levels: list[tuple[int, int, int]], config: Config, device) -> torch.Tensor:
    """(A, 5) anchors ordered like the head outputs (level, row, column, ratio, angle)."""
    out = []
    for index, (stride, rows, cols) in enumerate(levels):
        size = config.anchor_size * 2**index
        ys, xs = torch.meshgrid(torch.arange(rows, device=device), torch.arange(cols, device=device), indexing="ij")
        centres = torch.stack([(xs + 0.5) * stride - 0.5, (ys + 0.5) * stride - 0.5], dim=-1).reshape(-1, 1, 2)
        shapes = torch.tensor(
            [[size / np.sqrt(r), size * np.sqrt(r), a] for r in config.ratios for a in config.anchor_angles],
            device=device,
            dtype=torch.float32,
        )
        anchors = torch.cat([centres.expand(-1, len(shapes), 2), shapes[None].expand(len(centres), -1, 3)], dim=-1)
        out.append(anchors.reshape(-1, 5))
    return torch.cat(out)


def proposal_loss(
    outputs: torch.Tensor, anchors: torch.Tensor, targets: torch.Tensor, config: Config, generator
) -> torch.Tensor:
    """Objectness BCE over a sample of anchors (at most half positive) + box regression on the positives."""
    losses = []
    for output, boxes in zip(outputs, targets):
        iou = approx_rotated_iou(anchors, boxes)
        best, match = iou.max(dim=1)
        labels = torch.full_like(best, -1.0)
        labels[best < config.negative_iou] = 0.0
        labels[best >= config.positive_iou] = 1.0
        labels[iou.argmax(dim=0)] = 1.0  # every vertebra keeps its best anchor
        positive, negative = torch.nonzero(labels == 1).flatten(), torch.nonzero(labels == 0).flatten()
        n_pos = min(len(positive), config.anchors_per_image // 2)
        positive = positive[torch.randperm(len(positive), generator=generator)[:n_pos].to(positive.device)]
        negative = negative[
            torch.randperm(len(negative), generator=generator)[: config.anchors_per_image - n_pos].to(negative.device)
        ]
        chosen = torch.cat([positive, negative])
        objectness = F.binary_cross_entropy_with_logits(output[chosen, 0].float(), labels[chosen])
        delta = output[positive, 1:].float()
        target = encode(boxes[match[positive]], anchors[positive])
        regression = F.smooth_l1_loss(delta[:, :4], target[:, :4], beta=1 / 9) + config.angle_weight * F.mse_loss(
            delta[:, 4], target[:, 4]
        )
        losses.append(objectness + regression)
    return torch.stack(losses).mean()


# --------------------------------------------------------------------------------------------- stage two


class CornerFCN(nn.Module):
    """Fully convolutional corner detector on rotated patches: 4 heatmaps (TL, TR, BL, BR)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(1, channels),
            conv_bn_relu(channels, channels, dilation=2),
            conv_bn_relu(channels, channels, dilation=2),
            conv_bn_relu(channels, channels),
            nn.Conv2d(channels, 4, 1),
        )

    def forward(self, x):
        return self.body(x)


def _jitter(boxes: torch.Tensor, amounts: tuple[float, float, float], generator) -> torch.Tensor:
    noise = torch.randn(len(boxes), 5, generator=generator).to(boxes.device)
    out = boxes.clone()
    out[:, 0] += noise[:, 0] * amounts[0] * boxes[:, 2]
    out[:, 1] += noise[:, 1] * amounts[0] * boxes[:, 3]
    out[:, 2] *= torch.exp(noise[:, 2] * amounts[1])
    out[:, 3] *= torch.exp(noise[:, 3] * amounts[1])
    out[:, 4] += noise[:, 4] * amounts[2]
    return out


# --------------------------------------------------------------------------------------------- isolation


def _spine_column(image: np.ndarray) -> int:
    """Column of the brightest vertical structure near the middle (the spine), from the column projection."""
    height, width = image.shape
    profile = ndimage.uniform_filter1d(image[int(0.1 * height) : int(0.9 * height)].mean(axis=0), max(1, width // 16))
    lo, hi = int(0.2 * width), max(int(0.8 * width), int(0.2 * width) + 1)
    return lo + int(np.argmax(profile[lo:hi]))


def _band_profile(image: np.ndarray, band: float) -> np.ndarray:
    """Row projection of a band around the spine column, smoothed and divided by its median."""
    height, width = image.shape
    column, half = _spine_column(image), max(1, int(band * width))
    profile = image[:, max(0, column - half) : column + half + 1].mean(axis=1)
    profile = ndimage.uniform_filter1d(profile, max(1, height // 34))
    return profile / max(float(np.median(profile[profile > 0])) if np.any(profile > 0) else 1.0, 1e-6)


def estimate_isolation(cases: list[Case], band: float) -> dict:
    """Thresholds of the band profile inside the training spines (2nd and 98th percentiles)."""
    values = []
    for case in cases:
        profile = _band_profile(case.image, band)
        top, bottom = case.landmarks[:, 1].min(), case.landmarks[:, 1].max()
        rows = np.arange(len(profile))
        values.append(profile[(rows >= top) & (rows <= bottom)])
    values = np.concatenate(values)
    return {"low": float(np.percentile(values, 2)), "high": float(np.percentile(values, 98))}


def isolate(case: Case, config: Config) -> Case:
    """Crop a (test) case to the spine region found by the intensity projections (see module docstring)."""
    profile = _band_profile(case.image, config.band)
    inside = (profile >= config.isolation["low"]) & (profile <= config.isolation["high"])
    inside = ndimage.binary_closing(inside, structure=np.ones(max(1, len(profile) // 40)))
    runs, count = ndimage.label(inside)
    if count == 0:
        return case
    longest = 1 + int(np.argmax(ndimage.sum(inside, runs, index=np.arange(1, count + 1))))
    rows = np.flatnonzero(runs == longest)
    box = spine_box(rows[0], rows[-1], _spine_column(case.image), margin=config.margin, aspect=config.aspect)
    return case.cropped(box, (config.height, config.width_px))


# --------------------------------------------------------------------------------------------- train / predict


def _cases(data_dir, config: Config, *, ground_truth: bool) -> list[Case]:
    return load_cases(data_dir, size=(config.height, config.width_px), ground_truth=ground_truth)


def train(*, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    generator = torch_generator(config.seed)
    cases = _cases(data_dir, config, ground_truth=True)
    isolation = estimate_isolation(cases, config.band)
    if config.isolate:
        cases = [
            crop_to_landmarks(case, margin=config.margin, size=(config.height, config.width_px), aspect=config.aspect)
            for case in cases
        ]
    arrays = {
        "images": np.stack([c.image for c in cases])[:, None],
        "boxes": np.stack([rotated_boxes(c.landmarks) for c in cases]).astype(np.float32),
        "corners": np.stack([c.landmarks.reshape(N_VERTEBRAE, 4, 2) for c in cases]).astype(np.float32),
    }

    detector = RotatedProposalNet(config).to(device)
    with torch.no_grad():
        _, levels = detector(torch.zeros(1, 1, config.height, config.width_px, device=device))
    anchors = make_anchors(levels, config, device)
    optimiser = torch.optim.Adam(detector.parameters(), lr=config.lr)
    detector.train()
    losses = fit(
        detector.parameters(),
        arrays=arrays,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc="rotated proposals",
        progress=progress,
        loss_fn=lambda b: proposal_loss(
            detector(intensity_augment(b["images"], rng, kind=config.intensity))[0],
            anchors,
            b["boxes"],
            config,
            generator,
        ),
    )

    fcn = CornerFCN(config.fcn_channels).to(device)
    optimiser = torch.optim.Adam(fcn.parameters(), lr=config.lr)

    def corner_loss(batch):
        n = batch["boxes"].shape[0]
        boxes = _jitter(batch["boxes"].reshape(-1, 5), config.jitter, generator)
        owner = torch.arange(n, device=device).repeat_interleave(N_VERTEBRAE)
        images = intensity_augment(batch["images"], rng, kind=config.intensity)
        patches = rotated_crops(images, owner, boxes, patch=config.patch, context=config.context)
        targets = gaussian_maps(
            to_patch(batch["corners"].reshape(-1, 4, 2), boxes, patch=config.patch, context=config.context),
            (config.patch, config.patch),
            sigma=config.corner_sigma,
        )
        return F.mse_loss(fcn(patches).float(), targets) * 100

    fcn.train()
    corner_losses = fit(
        fcn.parameters(),
        arrays=arrays,
        epochs=config.fcn_epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc="corner FCN",
        progress=progress,
        loss_fn=corner_loss,
    )
    return {
        "state": {"detector": detector.state_dict(), "fcn": fcn.state_dict()},
        "losses": losses,
        "corner_losses": corner_losses,
        "isolation": isolation,
        "config": asdict(config),
    }


def select_vertebrae(boxes: np.ndarray, scores: np.ndarray, config: Config) -> np.ndarray:
    """17 boxes T1-L5 from the kept proposals: midline outlier removal, best 17-long run, interpolation if short."""
    order = np.argsort(boxes[:, 1])
    boxes, scores = boxes[order], scores[order]
    if len(boxes) >= 6:
        keep = np.ones(len(boxes), bool)
        for _ in range(3):
            midline = curve_x(boxes[keep][:, :2], boxes[:, 1], degree=3)
            residual = np.abs(boxes[:, 0] - midline)
            keep = residual <= max(1.0, float(np.median(boxes[:, 2])))
            if keep.sum() < 6:
                keep = np.ones(len(boxes), bool)
                break
        boxes, scores = boxes[keep], scores[keep]
    if len(boxes) > N_VERTEBRAE:
        totals = np.convolve(scores, np.ones(N_VERTEBRAE), mode="valid")
        start = int(np.argmax(totals))
        return boxes[start : start + N_VERTEBRAE]
    if len(boxes) < N_VERTEBRAE:
        source = np.linspace(0, 1, len(boxes))
        target = np.linspace(0, 1, N_VERTEBRAE)
        return np.column_stack([np.interp(target, source, boxes[:, j]) for j in range(5)])
    return boxes


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    config = Config(**{**asdict(config), "isolation": checkpoint["isolation"]})
    detector = RotatedProposalNet(config).to(device)
    detector.load_state_dict(checkpoint["state"]["detector"])
    fcn = CornerFCN(config.fcn_channels).to(device)
    fcn.load_state_dict(checkpoint["state"]["fcn"])
    detector.eval(), fcn.eval()
    out = {}
    for case in progress_bar(_cases(data_dir, config, ground_truth=False), enabled=progress, desc="rotated predict"):
        if config.isolate:
            case = isolate(case, config)
        image = torch.as_tensor(case.image, device=device)[None, None]
        with torch.no_grad(), autocast(device):
            outputs, levels = detector(image)
            anchors = make_anchors(levels, config, device)
            scores = torch.sigmoid(outputs[0, :, 0].float())
            candidates = scores.topk(min(len(scores), 10 * N_VERTEBRAE)).indices
            boxes, scores = decode(outputs[0, candidates, 1:], anchors[candidates]), scores[candidates]
            kept = rotated_nms(boxes, scores, config.nms_iou)
            strong = kept[scores[kept] >= config.score_threshold]
            kept = strong if len(strong) >= N_VERTEBRAE else kept[:N_VERTEBRAE]
        if len(kept) < 2:
            note_fallback(case.id, "zeros")
            out[case.id] = {"angles": [0.0, 0.0, 0.0]}
            continue
        chosen = select_vertebrae(boxes[kept].cpu().numpy(), scores[kept].cpu().numpy(), config)
        chosen_t = torch.as_tensor(chosen, device=device, dtype=torch.float32)
        with torch.no_grad(), autocast(device):
            patches = rotated_crops(
                image,
                torch.zeros(N_VERTEBRAE, dtype=torch.long, device=device),
                chosen_t,
                patch=config.patch,
                context=config.context,
            )
            peaks, _ = heatmap_argmax(fcn(patches).float())
        corners = from_patch(peaks, chosen_t, patch=config.patch, context=config.context).cpu().numpy()
        # a corner further than `corner_tolerance` box heights from its rotated box's corner, and a vertebra whose
        # corners the FCN could not separate, fall back to the rotated box's corners
        box_corners = box_to_corners(chosen)
        distance = np.linalg.norm(corners - box_corners, axis=-1) / chosen[:, 3:4]
        replaced = distance > config.corner_tolerance
        corners = np.where(replaced[..., None], box_corners, corners)
        replaced |= unusable_vertebrae(corners.reshape(-1, 2))[:, None]
        if 2 * replaced.sum() > replaced.size:  # most corners are the rotated boxes', not the FCN's
            note_fallback(case.id, "box-corners")
        landmarks = case.to_original(repair_vertebrae(corners.reshape(-1, 2), box_corners.reshape(-1, 2)))
        height = case.original_height
        out[case.id] = {
            "angles": [float(a) for a in cobb_angles(landmarks, height)],
            "landmarks": landmarks.tolist(),
            "image_height": height,
        }
    return out
