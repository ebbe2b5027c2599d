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
- Sect. 2.2 (stage two): rotated RoI Align on the shared FPN features, as in the paper's Fig. 1 (the proposals and
  the landmark FCN read the same pyramid) -> ``baselines.nn.rotated_roi.pyramid_roi_align`` samples a
  ``patch`` x ``patch`` grid aligned with each rotated box (enlarged by ``context``) from the pyramid level that Mask
  R-CNN's rule assigns to the box's size (``F.affine_grid`` + ``F.grid_sample``, bilinear, like RoI Align; every
  vertebra box of these image sizes lands on the finest level, stride 4), and a fully convolutional network
  (`CornerHead`, shaped like Mask R-CNN's keypoint head, the paper's reference [8]: ``head_layers`` 3x3
  convolutions, a stride-2 transposed convolution and a bilinear 2x upsampling) predicts one heatmap per corner
  (TL, TR, BL, BR) in the box frame, 4 x ``patch`` pixels a side; the peaks are mapped back through the inverse
  rotation. Both stages are one network trained end to end: each step adds the corner loss (mean-squared error
  against Gaussian targets) to the proposal loss, so the corner gradients reach the shared backbone. The RoIs of a
  training step are the ground-truth boxes with random jitter of position, size and angle (Mask R-CNN trains its
  heads on the proposals that match a ground-truth box; the jittered boxes stand in for them), so the head learns
  to correct imperfect proposals.
- Sect. 3.1 (spine region isolation): horizontal and vertical intensity projections (`isolate`): the column
  projection finds the spine column, the row projection of a band around it is compared with thresholds estimated
  from the training set's spine rows (their 2nd and 98th percentiles), the longest run of rows inside them is the
  spine region, and the crop is widened or narrowed to the paper's locked height/width ratio of 3.5. Training
  images use the landmark span instead (the paper's training images were cropped by hand).
- Sect. 3.1 (spine region refinement): the paper refines the isolated region with a spinal-cord segmentation and
  the locked aspect ratio. Here stage one runs on the isolated region, the region spanned by its 17 selected boxes
  is framed like the training crops (`refine`), and both stages run on that refined crop. On the phantom test
  images the isolated region is about twice the spine's height, so, for stage one to find those smaller
  vertebrae, every training case also gives ``zoom_crops`` crops in which the spine covers a random 45-95 % of the
  height, off centre (`zoomed_out`; the paper names no augmentation).
- Post-processing (Sect. 3.2: false-positive suppression with the spine midline): boxes whose centre lies far from
  a robust polynomial midline through the box centres are discarded; of the rest, the 17 consecutive boxes (top to
  bottom) with the largest total score are the vertebrae T1-L5; if fewer than 17 remain, the box parameters are
  interpolated along the column to 17. Angles come from the 68 corners with the official rules
  (``evaluators.cobb.cobb_angles``).
Differences: no ImageNet weights; no spinal-cord segmentation (the projection midline and stage one's own boxes
take its places in isolation, refinement and false-positive suppression); the landmark FCN's depth and width are not
given in the paper (Mask R-CNN's keypoint head in the paper preset, 8 convolutions of 512 channels on 14 x 14 RoIs,
smaller in the CPU presets); stage-two RoIs are jittered ground-truth boxes rather than sampled proposals; the
zoomed-out training crops; sizes are scaled down in the tiny/standard presets. Until 2026-12-07 stage two cropped the
image itself, trained a separate FCN after stage one, and a corner further than a quarter of its box's height from
the rotated box's corner took the box's (the earlier RESULTS.md rows, where that fallback replaced most corners).
Fallbacks are recorded in the run report (``baselines.report``): a case where more than half of the 68 corners
are the boxes' is noted as ``box-corners``, a case with fewer than two kept boxes as ``zeros``. By default every
corner is the FCN's except those of a vertebra whose left and right corners coincide, which take the rotated box's;
``corner_tolerance`` (box heights, default off) also replaces corners that far from their box's corner
(``benchmarks/baselines_aasce.py`` reports that variant at 0.25 beside the method's row).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from baselines.aasce.common import crop_to_landmarks, crop_to_points, intensity_augment, spine_box
from baselines.data import Case, load_cases
from baselines.nn.detection import fpn_backbone
from baselines.nn.heatmaps import gaussian_maps, heatmap_argmax
from baselines.nn.rotated_roi import from_patch, pyramid_roi_align, to_patch
from baselines.nn.spine_targets import box_to_corners, curve_x, repair_vertebrae, rotated_boxes, unusable_vertebrae
from baselines.nn.training import autocast, fit, resolve_device, seed_everything, torch_generator
from baselines.nn.training import progress as progress_bar
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
    patch: int = 14  # rotated RoI Align output size (feature cells); the heatmaps have 4 x patch pixels a side
    context: float = 1.6  # patch covers the box enlarged by this factor
    corner_sigma: float = 2.0  # pixels of the heatmap
    fcn_channels: int = 512
    head_layers: int = 8
    corner_weight: float = 1.0  # of the corner loss beside the proposal loss
    corner_tolerance: float = float("inf")  # box heights; a corner further from its box corner takes the box corner
    jitter: tuple[float, float, float] = (0.15, 0.1, 0.1)  # centre (of size), log-size, angle (rad)
    score_threshold: float = 0.3
    nms_iou: float = 0.3
    isolate: bool = True
    refine_passes: int = 2  # times the region is recropped around stage one's vertebrae and detected again
    zoom_crops: int = 1  # extra training crops per case with the spine smaller and off centre
    spine_fraction: tuple[float, float] = (0.45, 0.95)  # of the crop height the spine covers in those crops
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
        patch=2,
        corner_sigma=1.0,
        fcn_channels=4,
        head_layers=1,
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
        batch_size=4,
        lr=2e-3,
        patch=6,
        corner_sigma=1.5,
        fcn_channels=32,
        head_layers=4,
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
    """FPN backbone + a shared head giving, per level location and anchor, an objectness logit and 5 deltas, and
    the stage-two `CornerHead` reading rotated RoIs of the same pyramid (`corner_maps`)."""

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
        self.corner_head = CornerHead(c, config.fcn_channels, config.head_layers)

    def forward(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, list[tuple[int, int, int]], list[torch.Tensor]]:
        """(N, A, 6) outputs over all anchors, the (stride, rows, cols) of each level, and the pyramid levels P2-P5
        (the extra max-pooled level only carries proposals, as in Mask R-CNN)."""
        features = self.backbone((x - 0.5) / 0.25)
        outputs, levels = [], []
        for feature in features.values():
            n, _, rows, cols = feature.shape
            y = self.out(self.head(feature)).view(n, self.k, 6, rows, cols).permute(0, 3, 4, 1, 2)
            outputs.append(y.reshape(n, -1, 6))
            levels.append((x.shape[-2] // rows, rows, cols))
        pyramid = [features[key] for key in list(features)[:4]]
        return torch.cat(outputs, dim=1), levels, pyramid

    def corner_maps(
        self, pyramid: list[torch.Tensor], owner: torch.Tensor, boxes: torch.Tensor, *, image_height: int
    ) -> torch.Tensor:
        """(N, 4, 4p, 4p) corner heatmaps of rotated boxes (image pixels) of images ``owner`` from the shared
        pyramid (p = ``config.patch``)."""
        strides = [image_height // level.shape[-2] for level in pyramid]
        rois = pyramid_roi_align(
            pyramid, owner, boxes, strides=strides, patch=self.config.patch, context=self.config.context
        )
        return self.corner_head(rois)


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


class CornerHead(nn.Module):
    """Stage two's fully convolutional network on rotated RoI features, shaped like Mask R-CNN's keypoint head:
    ``layers`` 3x3 convolutions with ReLU, a stride-2 transposed convolution to the 4 corner maps (TL, TR, BL,
    BR) and a bilinear 2x upsampling, so a p x p RoI gives 4p x 4p heatmaps."""

    def __init__(self, in_channels: int, channels: int, layers: int):
        super().__init__()
        blocks: list[nn.Module] = []
        for index in range(layers):
            width = in_channels if index == 0 else channels
            blocks += [nn.Conv2d(width, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*blocks)
        self.up = nn.ConvTranspose2d(channels if layers else in_channels, 4, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.up(self.body(x)), scale_factor=2, mode="bilinear", align_corners=False)


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


def zoomed_out(case: Case, config: Config, rng: np.random.Generator) -> Case:
    """A training crop in which the spine (landmark rows, enlarged by ``margin``) covers a random fraction of the
    height, uniform in ``spine_fraction``, at a random height, with the centre column shifted by up to 15 % of the
    width; the crop keeps the ``aspect`` of the framed crops. Such crops are what the projection-based isolation
    gives on test images, so stage one learns to find vertebrae smaller than in the framed crops."""
    top, bottom = float(case.landmarks[:, 1].min()), float(case.landmarks[:, 1].max())
    span = (bottom - top) * (1 + 2 * config.margin)
    height = span / rng.uniform(*config.spine_fraction)
    y0 = top - config.margin * (bottom - top) - rng.uniform(0.0, 1.0) * (height - span)
    width = height / config.aspect
    centre = float(case.landmarks[:, 0].mean()) + rng.uniform(-0.15, 0.15) * width
    return case.cropped((centre - width / 2, y0, centre + width / 2, y0 + height), (config.height, config.width_px))


def refine(case: Case, vertebrae: np.ndarray, config: Config) -> Case:
    """Spine region refinement: the rows spanned by the corners of the 17 selected rotated boxes and their mean
    column, framed like the training crops (``margin``, ``aspect``)."""
    return crop_to_points(
        case,
        box_to_corners(vertebrae).reshape(-1, 2),
        margin=config.margin,
        size=(config.height, config.width_px),
        aspect=config.aspect,
    )


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
        framed = [
            crop_to_landmarks(case, margin=config.margin, size=(config.height, config.width_px), aspect=config.aspect)
            for case in cases
        ]
        cases = framed + [zoomed_out(case, config, rng) for _ in range(config.zoom_crops) for case in cases]
    arrays = {
        "images": np.stack([c.image for c in cases])[:, None],
        "boxes": np.stack([rotated_boxes(c.landmarks) for c in cases]).astype(np.float32),
        "corners": np.stack([c.landmarks.reshape(N_VERTEBRAE, 4, 2) for c in cases]).astype(np.float32),
    }

    net = RotatedProposalNet(config).to(device)
    with torch.no_grad():
        _, levels, _ = net(torch.zeros(1, 1, config.height, config.width_px, device=device))
    anchors = make_anchors(levels, config, device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    proposal_losses: list[float] = []
    corner_losses: list[float] = []

    def joint_loss(batch):
        """Stage one's proposal loss + stage two's corner loss on jittered ground-truth RoIs of the same pyramid."""
        images = intensity_augment(batch["images"], rng, kind=config.intensity)
        outputs, _, pyramid = net(images)
        proposal = proposal_loss(outputs, anchors, batch["boxes"], config, generator)
        boxes = _jitter(batch["boxes"].reshape(-1, 5), config.jitter, generator)
        owner = torch.arange(len(images), device=device).repeat_interleave(N_VERTEBRAE)
        maps = net.corner_maps(pyramid, owner, boxes, image_height=images.shape[-2]).float()
        size = maps.shape[-1]
        targets = gaussian_maps(
            to_patch(batch["corners"].reshape(-1, 4, 2), boxes, patch=size, context=config.context),
            (size, size),
            sigma=config.corner_sigma,
        )
        corner = F.mse_loss(maps, targets) * 100
        proposal_losses.append(float(proposal.detach()))
        corner_losses.append(float(corner.detach()))
        return proposal + config.corner_weight * corner

    net.train()
    losses = fit(
        net.parameters(),
        arrays=arrays,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc="rotated proposals + corners",
        progress=progress,
        loss_fn=joint_loss,
    )
    return {
        "state": {"net": net.state_dict()},
        "losses": losses,
        "proposal_losses": proposal_losses,
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


def _propose(
    net: RotatedProposalNet, case: Case, config: Config, device
) -> tuple[torch.Tensor, list[torch.Tensor], np.ndarray, np.ndarray]:
    """Stage one on one case: the image tensor, its pyramid, and the kept rotated boxes with their scores (the
    strong ones after rotated NMS, or the best 17 when fewer are strong)."""
    image = torch.as_tensor(case.image, device=device)[None, None]
    with torch.no_grad(), autocast(device):
        outputs, levels, pyramid = net(image)
        anchors = make_anchors(levels, config, device)
        scores = torch.sigmoid(outputs[0, :, 0].float())
        candidates = scores.topk(min(len(scores), 10 * N_VERTEBRAE)).indices
        boxes, scores = decode(outputs[0, candidates, 1:], anchors[candidates]), scores[candidates]
        kept = rotated_nms(boxes, scores, config.nms_iou)
        strong = kept[scores[kept] >= config.score_threshold]
        kept = strong if len(strong) >= N_VERTEBRAE else kept[:N_VERTEBRAE]
    return image, pyramid, boxes[kept].cpu().numpy(), scores[kept].cpu().numpy()


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    config = Config(**{**asdict(config), "isolation": checkpoint["isolation"]})
    if "net" not in checkpoint["state"]:
        raise ValueError(
            "this rotated-proposals checkpoint predates the shared-feature stage two (it holds a separate corner "
            "FCN); train the method again"
        )
    net = RotatedProposalNet(config).to(device)
    net.load_state_dict(checkpoint["state"]["net"])
    net.eval()
    out = {}
    for case in progress_bar(_cases(data_dir, config, ground_truth=False), enabled=progress, desc="rotated predict"):
        if config.isolate:
            case = isolate(case, config)
        image, pyramid, boxes, scores = _propose(net, case, config, device)
        for _ in range(config.refine_passes if config.isolate else 0):
            if len(boxes) < 2:
                break
            case = refine(case, select_vertebrae(boxes, scores, config), config)
            image, pyramid, boxes, scores = _propose(net, case, config, device)
        if len(boxes) < 2:
            note_fallback(case.id, "zeros")
            out[case.id] = {"angles": [0.0, 0.0, 0.0]}
            continue
        chosen = select_vertebrae(boxes, scores, config)
        chosen_t = torch.as_tensor(chosen, device=device, dtype=torch.float32)
        with torch.no_grad(), autocast(device):
            maps = net.corner_maps(
                pyramid,
                torch.zeros(N_VERTEBRAE, dtype=torch.long, device=device),
                chosen_t,
                image_height=image.shape[-2],
            ).float()
            peaks, _ = heatmap_argmax(maps)
        corners = from_patch(peaks, chosen_t, patch=maps.shape[-1], context=config.context).cpu().numpy()
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
