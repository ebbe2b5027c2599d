"""Keypoint detection for spinal curvature (Chen, Peng, Li, Cheng, Wei — iFLYTEK, "Accurate Automated Keypoint
Detections for Spinal Curvature Estimation", CSI 2019 / AASCE): two keypoint pipelines, their own angle
measurement, and a voting fusion.

Pipeline and the paper section each part follows:
- Sect. 2.1 / 3.1, Method-1: RetinaNet (``baselines.nn.detection.retinanet``; ResNet-50-FPN in the paper) on
  vertebra boxes made from each vertebra's four landmarks; boxes sorted top to bottom are filtered by the IoU rule (a
  box whose IoU with both its upper and its lower neighbour exceeds T_IoU = 0.36 is dropped) and the distance rule (a
  box whose upper-left corner is farther from the upper neighbour's than from its own upper-right corner is dropped);
  an HRNet (``baselines.nn.hrnet.HRNet``; W48 at 384×288, Adam, in the paper) predicts the four corner heatmaps of
  each box crop. The ``paper`` preset builds HRNet-W48's layout (width 48, four stages, four blocks per branch,
  modules 1/1/4/3: 64.9 M parameters against W48's 63.6 M; basic residual blocks throughout).
- Sect. 2.2 / 3.1, Method-2: SimpleBaseline I (ResNet + deconvolution head, ``baselines.nn.heatmaps.SimpleBaseline``;
  ResNet-152 at 384×288 with CLAHE in the paper) predicts 68 heatmaps on the whole image in a fixed order; the rough
  points drive the patch process — patches covering one to three vertebrae (4–12 points, half vertebrae allowed at
  the border), sampled many times per image; SimpleBaseline II (256×192) predicts, per patch, four heatmaps, one per
  corner type (top-left, top-right, bottom-left, bottom-right), each with as many peaks as the patch has vertebrae.
  Training patches are cut around the ground-truth landmarks. The ``paper`` preset trains SimpleBaseline II at the
  paper's batch 130 for the paper's 70 epochs over 200 patches of each of its 609 training images (65 584 steps,
  about 8.5 M patch samples; patches are drawn at random, so an epoch is that many samples).
- Sect. 2.3, post-processing of Method-2: the patch peaks mapped back to the image form four groups (one per corner
  type); DBSCAN per group, clusters sorted by y; the first and last clusters are dropped when their y order against
  the other groups or their direction to the adjacent cluster is abnormal; the optional squeezed-vertebra check
  (diagonal length ratio of the quadrilateral) removes redundant points; the median cluster count over the four
  groups is taken as the number of vertebrae; K-means with that many centres; centres whose x/y gap ratio to their
  neighbours is abnormal are removed and K-means runs again; the last three vertebrae are suppressed when their y gaps
  are too small. With and without the squeezed check this gives the two Method-2 results.
- Sect. 3.2, angle measurement: the apex is the vertebra farthest from the line joining the end vertebrae; V1 and V2
  are the most tilted vertebrae above and below it (main curve, from their middle vectors); V0 is the most tilted above
  V1 and V3 the most tilted below V2 (upper and lower curves). Angles are returned in the challenge's column order
  (main/largest curve first, then the upper and the lower curve).
- Sect. 3.3, fusion of Method-1 and the two Method-2 results: an output whose selected vertebrae have opposite sides
  of very different lengths fails the quality check; the remaining outputs vote per separation line (V0…V3) by
  majority on the selected vertebra's position (``fuse``: the outputs may find different numbers of vertebrae, so
  an index would name different vertebrae), the patch pipeline's choice deciding when there is no majority; the
  outputs' angles at the agreed positions are averaged.

Where this implementation differs: no ImageNet-pretrained backbones (random initialisation; compact CPU presets);
the paper's thresholds that are not given (DBSCAN radius, ratios) are configuration options scaled by the vertebra
pitch (the spine length a training-like framing implies, / 16); when no output passes the quality check, all of them
vote; an image where nothing is found gets the training-set mean angles (recorded as the ``training-mean`` fallback in
the run report, ``baselines.report``). The distance rule compares each box with the
box above it in the sorted list (the paper's "previous box"), kept or not. Patch heatmap peaks are refined to
sub-pixel positions (``local_peaks``). Two departures are configuration options, off in the ``paper`` preset:
``retina_nms`` (RetinaNet's suppression IoU, torchvision's 0.5 by default) and ``merge_distance``
(``merge_coincident``: Method-1 vertebrae whose centres nearly coincide are averaged, because two boxes on one
vertebra give HRNet the same corners twice, and a duplicated vertebra's noisy tilt then wins the most-tilted
selection). The ``standard`` preset uses NMS 0.3 and merging at 0.7 vertebra heights; on validation phantoms (seeds
other than the benchmark's) each lowered Method-1's SMAPE.

The paper used no cropping step; our test domain shows much more of the body (skull, neck, pelvis) than the
training images, so ``auto_crop`` (default on) first picks, among candidate windows with the training images' aspect
ratio (``common.framing_windows``, 0.5 to 1 image height, every 5 % of the height), the one SimpleBaseline I is most
confident about (``_Networks.locate_spine``: the mean over its 68 heatmaps of each heatmap's peak), then frames the
image around SimpleBaseline I's points in that window as the training images frame the spine (``common.Framing``),
``crop_rounds`` times (``common.refine_crop``). Run on the whole image instead, SimpleBaseline I put its 68 points on
the neck and the skull and the crop missed the spine. Both methods run on the crop.

The ``standard`` preset trains every network well past the plateau where heatmap networks output zeros (the
earlier 300-step setting stopped on it: SimpleBaseline I's points were nine vertebra heights off), and runs
SimpleBaseline II on 96×96 patches with 200 patches per image (at 48×48 its 12×12 heatmaps put the corners about
eleven full-resolution pixels off).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.cluster import DBSCAN, KMeans
from torchvision.ops import box_iou

from baselines.aasce import common
from baselines.data import Augmentation, augment, enhance, letterbox, prepare, read_cases
from baselines.nn import detection
from baselines.nn.converters import heatmaps_to_landmarks, landmarks_to_boxes, landmarks_to_heatmaps, vertebra_corners
from baselines.nn.heatmaps import SimpleBaseline
from baselines.nn.hrnet import HRNet
from baselines.nn.training import batches, optimise, seed_everything, state_to_cpu
from baselines.nn.training import progress as progress_bar
from baselines.report import note_fallback

TASK = "aasce-cobb"
PAPER = (
    "Chen, Peng, Li, Cheng, Wei (iFLYTEK): RetinaNet + HRNet and SimpleBaseline patch keypoints "
    "with fusion, CSI 2019 AASCE"
)


@dataclass(frozen=True)
class Config:
    #: Settings whose 0 means "use another setting" (baselines.presets.validate_config).
    ZERO_MEANS_DEFAULT: ClassVar[frozenset[str]] = frozenset({"sb2_batch"})

    seed: int = 0
    enhancement: str = "clahe"
    augmentation: Augmentation = Augmentation(rotation_degrees=10.0, scale_range=(0.9, 1.1))
    # Method-1
    retina_size: tuple[int, int] = (800, 400)
    retina_backbone: str = "resnet50"
    retina_base_channels: int = 16
    fpn_channels: int = 256
    anchor_sizes: tuple[int, ...] = (32, 64)
    aspect_ratios: tuple[float, ...] = (0.5, 1.0)
    retina_steps: int = 180_000
    retina_batch: int = 8
    retina_lr: float = 0.01
    box_score: float = 0.3
    retina_nms: float = 0.5  # RetinaNet's non-maximum suppression IoU (torchvision's default)
    iou_threshold: float = 0.36
    merge_distance: float = 0.0  # merge Method-1 vertebrae closer than this many heights (``merge_coincident``)
    hrnet_size: tuple[int, int] = (384, 288)
    hrnet_width: int = 48
    hrnet_stages: int = 4
    hrnet_stem_stride: int = 4
    hrnet_blocks: int = 1  # residual blocks per branch; the paper preset: 4 (HRNet-W48)
    hrnet_modules: tuple[
        int, ...
    ] = ()  # exchange modules per stage; () = one per stage; the paper preset: (1, 1, 4, 3)
    hrnet_steps: int = 20_000
    hrnet_batch: int = 32
    # Method-2
    sb1_size: tuple[int, int] = (384, 288)
    sb2_size: tuple[int, int] = (256, 192)
    sb_backbone: str = "resnet152"
    sb_base_channels: int = 16
    sb_deconv_channels: int = 256
    sb1_steps: int = 4000
    sb2_steps: int = 20_000
    sb_batch: int = 32
    sb2_batch: int = 0  # SimpleBaseline II's batch; 0 = ``sb_batch``; the paper preset: 130
    patches_per_image: int = 200
    peak_threshold: float = 0.3
    dbscan_radius: float = 0.25
    squeeze_ratio: float = 1.2
    gap_ratio: float = 1.5
    small_gap: float = 0.5
    # shared
    heatmap_sigma: float = 2.0
    lr: float = 1e-3
    quality_ratio: float = 1.5
    auto_crop: bool = True
    crop_rounds: int = 3  # rounds of the automatic crop (``common.refine_crop``)
    window_search: bool = True  # start the crop from the most training-like window (``_Networks.locate_spine``)
    window_heights: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # candidate window heights / image height
    window_step: float = 0.05  # candidate window spacing / image height
    window_columns: int = 5


PRESETS = {
    "tiny": Config(
        retina_size=(128, 64),
        retina_backbone="compact",
        retina_base_channels=4,
        fpn_channels=8,
        anchor_sizes=(8, 16),
        retina_steps=6,
        retina_batch=2,
        hrnet_size=(24, 32),
        hrnet_width=4,
        hrnet_stages=2,
        hrnet_stem_stride=2,
        hrnet_steps=6,
        hrnet_batch=8,
        sb1_size=(128, 64),
        sb2_size=(32, 32),
        sb_backbone="compact",
        sb_base_channels=4,
        sb_deconv_channels=8,
        sb1_steps=6,
        sb2_steps=6,
        sb_batch=4,
        patches_per_image=12,
        heatmap_sigma=1.0,
        lr=3e-3,
    ),
    "standard": Config(
        retina_size=(256, 128),
        retina_backbone="compact",
        retina_base_channels=12,
        fpn_channels=32,
        anchor_sizes=(16, 32),
        retina_steps=1500,
        retina_batch=4,
        retina_nms=0.3,
        merge_distance=0.7,
        hrnet_size=(32, 48),
        hrnet_width=12,
        hrnet_stages=3,
        hrnet_stem_stride=2,
        hrnet_steps=2000,
        hrnet_batch=16,
        sb1_size=(192, 96),
        sb2_size=(96, 96),
        sb_backbone="compact",
        sb_base_channels=12,
        sb_deconv_channels=32,
        sb1_steps=3000,
        sb2_steps=3000,
        sb_batch=8,
        patches_per_image=200,
        heatmap_sigma=1.5,
        lr=2e-3,
        crop_rounds=1,
    ),
    # HRNet-W48's blocks and modules; SimpleBaseline II at the paper's batch 130 for the paper's 70 epochs over
    # 200 patches of each of the 609 training images (70 * 609 * 200 / 130 steps)
    "paper": Config(hrnet_blocks=4, hrnet_modules=(1, 1, 4, 3), sb2_batch=130, sb2_steps=70 * 609 * 200 // 130),
}

CORNER_GROUPS = ("top-left", "top-right", "bottom-left", "bottom-right")


# ---------------------------------------------------------------- networks
def _retinanet(config: Config):
    return detection.retinanet(
        num_classes=1,
        backbone=config.retina_backbone,
        base_channels=config.retina_base_channels,
        fpn_channels=config.fpn_channels,
        min_size=min(config.retina_size),
        max_size=max(config.retina_size),
        anchor_sizes=config.anchor_sizes,
        aspect_ratios=config.aspect_ratios,
        nms_thresh=config.retina_nms,
    )


def _hrnet(config: Config) -> HRNet:
    return HRNet(
        4,
        width=config.hrnet_width,
        num_stages=config.hrnet_stages,
        stem_stride=config.hrnet_stem_stride,
        blocks=config.hrnet_blocks,
        modules_per_stage=config.hrnet_modules or 1,
    )


def _simple_baseline(config: Config, keypoints: int) -> SimpleBaseline:
    return SimpleBaseline(
        keypoints,
        backbone=config.sb_backbone,
        base_channels=config.sb_base_channels,
        deconv_channels=config.sb_deconv_channels,
    )


def _heatmap_loss(
    model, images: list[np.ndarray], points: list[np.ndarray], stride: float, sigma: float, device
) -> torch.Tensor:
    """MSE between predicted heatmaps and Gaussians at ``points`` (a list per image of (K, P, 2) arrays, NaN = absent;
    several points per channel allowed)."""
    predicted = model(common.image_batch(images, device)).float()
    height, width = predicted.shape[-2:]
    targets = []
    for image_points in points:
        channels = []
        for channel_points in image_points:
            valid = channel_points[np.isfinite(channel_points).all(axis=1)]
            maps = (
                landmarks_to_heatmaps((valid + 0.5) / stride - 0.5, (height, width), sigma=sigma)
                if len(valid)
                else np.zeros((1, height, width), np.float32)
            )
            channels.append(maps.max(axis=0))
        targets.append(np.stack(channels))
    return F.mse_loss(predicted, torch.from_numpy(np.stack(targets)).to(device)) * 100.0


# ---------------------------------------------------------------- patches (Method-2)
def patch_box(corners: np.ndarray, first: int, count: int, rng: np.random.Generator, aspect: float) -> np.ndarray:
    """A box around vertebrae first..first+count-1 of (V, 4, 2) corners, extended by up to half a vertebra above and
    below and widened to the network's aspect ratio (width / height)."""
    chosen = corners[first : first + count].reshape(-1, 2)
    x0, y0 = chosen.min(axis=0)
    x1, y1 = chosen.max(axis=0)
    vertebra_height = (y1 - y0) / count
    y0 -= rng.uniform(0.1, 0.5) * vertebra_height
    y1 += rng.uniform(0.1, 0.5) * vertebra_height
    width = max(x1 - x0, aspect * (y1 - y0)) * rng.uniform(1.1, 1.4)
    centre = (x0 + x1) / 2 + rng.uniform(-0.1, 0.1) * (x1 - x0)
    return np.array([centre - width / 2, y0, centre + width / 2, y0 + width / aspect])


def _patch_targets(corners: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(4, V, 2) patch-pixel positions of every corner inside the box (NaN outside), grouped by corner type."""
    scale = np.array([size[1] / (box[2] - box[0]), size[0] / (box[3] - box[1])])
    local = (corners - box[:2]) * scale - 0.5 + 0.5 * scale  # pixel-centre frame of the resampled patch
    inside = (
        (local[..., 0] >= 0) & (local[..., 0] <= size[1] - 1) & (local[..., 1] >= 0) & (local[..., 1] <= size[0] - 1)
    )
    local[~inside] = np.nan
    return local.transpose(1, 0, 2)


def _to_image(points: np.ndarray, box: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    scale = np.array([size[1] / (box[2] - box[0]), size[0] / (box[3] - box[1])])
    return (points + 0.5 - 0.5 * scale) / scale + box[:2]


# ---------------------------------------------------------------- training
def _train_retinanet(prepared, config: Config, device, rng, progress: bool):
    model = _retinanet(config).to(device).train()

    def loss_fn(step: int) -> torch.Tensor:
        images, targets = [], []
        for index in rng.choice(len(prepared), size=config.retina_batch):
            image, landmarks, _ = augment(
                prepared[index].image, prepared[index].landmarks, config=config.augmentation, rng=rng
            )
            boxes = torch.from_numpy(landmarks_to_boxes(landmarks, image_shape=image.shape))
            images.append(torch.from_numpy(image)[None].to(device))
            targets.append({k: v.to(device) for k, v in detection.detection_targets(boxes, labels_start=0).items()})
        return sum(model(images, targets).values())

    losses = optimise(
        loss_fn,
        model.parameters(),
        steps=config.retina_steps,
        lr=config.retina_lr,
        optimizer="sgd",
        device=device,
        progress=progress,
        desc="RetinaNet",
    )
    return model, losses


def _vertebra_crop_box(box: np.ndarray, aspect: float) -> np.ndarray:
    """The box enlarged by 15 % and to the HRNet input's aspect ratio (width / height), same centre."""
    centre = (box[:2] + box[2:]) / 2
    width, height = (box[2:] - box[:2]) * 1.15
    width, height = max(width, aspect * height), max(height, width / aspect)
    return np.concatenate([centre - [width / 2, height / 2], centre + [width / 2, height / 2]])


def _train_hrnet(cases, config: Config, device, rng, progress: bool):
    model = _hrnet(config).to(device).train()
    aspect = config.hrnet_size[1] / config.hrnet_size[0]
    samples = [
        (enhance(case.image, config.enhancement), corners)
        for case in cases
        for corners in vertebra_corners(case.landmarks)
    ]

    def loss_fn(step: int) -> torch.Tensor:
        crops, points = [], []
        for index in rng.choice(len(samples), size=config.hrnet_batch):
            image, corners = samples[index]
            box = landmarks_to_boxes(corners)[0] + rng.uniform(-0.1, 0.1, 4) * np.tile(np.ptp(corners, axis=0), 2)
            crop_box = _vertebra_crop_box(box, aspect)
            crops.append(common.crop_resize(image, crop_box, config.hrnet_size))
            points.append(_patch_targets(corners[None], crop_box, config.hrnet_size))
        return _heatmap_loss(model, crops, points, model.heatmap_stride, config.heatmap_sigma, device)

    losses = optimise(
        loss_fn,
        model.parameters(),
        steps=config.hrnet_steps,
        lr=config.lr,
        device=device,
        progress=progress,
        desc="HRNet",
    )
    return model, losses


def _train_simple_baseline_1(prepared, config: Config, device, rng, progress: bool):
    model = _simple_baseline(config, 68).to(device).train()
    stream = batches(len(prepared), config.sb_batch, rng=rng)

    def loss_fn(step: int) -> torch.Tensor:
        images, points = [], []
        for index in next(stream):
            image, landmarks, _ = augment(
                prepared[index].image, prepared[index].landmarks, config=config.augmentation, rng=rng
            )
            images.append(image)
            points.append(landmarks[:, None, :])
        return _heatmap_loss(model, images, points, model.heatmap_stride, config.heatmap_sigma, device)

    losses = optimise(
        loss_fn,
        model.parameters(),
        steps=config.sb1_steps,
        lr=config.lr,
        device=device,
        progress=progress,
        desc="SimpleBaseline I",
    )
    return model, losses


def _train_simple_baseline_2(cases, config: Config, device, rng, progress: bool):
    model = _simple_baseline(config, 4).to(device).train()
    aspect = config.sb2_size[1] / config.sb2_size[0]
    images = [enhance(case.image, config.enhancement) for case in cases]
    corners = [vertebra_corners(case.landmarks) for case in cases]

    def loss_fn(step: int) -> torch.Tensor:
        patches, points = [], []
        for index in rng.choice(len(cases), size=config.sb2_batch or config.sb_batch):
            count = int(rng.integers(1, 4))
            first = int(rng.integers(0, len(corners[index]) - count + 1))
            box = patch_box(corners[index], first, count, rng, aspect)
            patches.append(common.crop_resize(images[index], box, config.sb2_size))
            points.append(_patch_targets(corners[index], box, config.sb2_size))
        return _heatmap_loss(model, patches, points, model.heatmap_stride, config.heatmap_sigma, device)

    losses = optimise(
        loss_fn,
        model.parameters(),
        steps=config.sb2_steps,
        lr=config.lr,
        device=device,
        progress=progress,
        desc="SimpleBaseline II",
    )
    return model, losses


def train(*, data_dir, config: Config, device, progress: bool = True) -> dict:
    rng = seed_everything(config.seed)
    cases = read_cases(data_dir, ground_truth=True)
    retina_prepared = prepare(cases, size=config.retina_size, enhancement=config.enhancement)
    sb1_prepared = prepare(cases, size=config.sb1_size, enhancement=config.enhancement)
    retinanet, retina_losses = _train_retinanet(retina_prepared, config, device, rng, progress)
    hrnet, hrnet_losses = _train_hrnet(cases, config, device, rng, progress)
    sb1, sb1_losses = _train_simple_baseline_1(sb1_prepared, config, device, rng, progress)
    sb2, sb2_losses = _train_simple_baseline_2(cases, config, device, rng, progress)
    return {
        "state": {
            "retinanet": state_to_cpu(retinanet),
            "hrnet": state_to_cpu(hrnet),
            "sb1": state_to_cpu(sb1),
            "sb2": state_to_cpu(sb2),
        },
        "losses": sb1_losses,
        "stage_losses": {
            "retinanet": retina_losses,
            "hrnet": hrnet_losses,
            "simple_baseline_1": sb1_losses,
            "simple_baseline_2": sb2_losses,
        },
        "mean_angles": np.mean([case.angles for case in cases], axis=0),
        "framing": common.framing_from_cases(cases).to_dict(),
    }


# ---------------------------------------------------------------- Method-1 inference
def filter_boxes(boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Boxes sorted top to bottom, filtered by the IoU rule and the upper-left distance rule (Sect. 3.1)."""
    if len(boxes) < 3:
        return boxes
    iou = box_iou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    keep = np.ones(len(boxes), dtype=bool)
    for index in range(1, len(boxes) - 1):
        if iou[index, index - 1] > iou_threshold and iou[index, index + 1] > iou_threshold:
            keep[index] = False
    boxes = boxes[keep]
    # the distance rule compares each box with the box above it in the sorted list, kept or not: comparing with the
    # last kept box instead would drop every box below one missed vertebra (each is further from the last kept one)
    far = np.hypot(*(boxes[1:, :2] - boxes[:-1, :2]).T) > boxes[1:, 2] - boxes[1:, 0]
    return boxes[np.concatenate([[True], ~far])]


def vertebra_heights(corners: np.ndarray) -> np.ndarray:
    """Each vertebra's height (V,) of (V, 4, 2) corners: the distance from its top corners' mid-point to its bottom
    corners' mid-point."""
    return np.linalg.norm(corners[:, 2:].mean(axis=1) - corners[:, :2].mean(axis=1), axis=1)


def merge_coincident(corners: np.ndarray, distance: float) -> np.ndarray:
    """Vertebrae (V, 4, 2), sorted top to bottom, with runs of consecutive vertebrae whose centres lie within
    ``distance`` vertebra heights (the median over the vertebrae of the distance between the mid-points of the top
    and the bottom corners) of the run's mean centre replaced by their mean: two boxes on one vertebra give HRNet
    two copies of the same corners. ``distance`` 0 merges nothing."""
    if distance <= 0 or len(corners) < 2:
        return corners
    height = float(np.median(vertebra_heights(corners)))
    runs = [[corners[0]]]
    for vertebra in corners[1:]:
        if np.linalg.norm(vertebra.mean(axis=0) - np.mean(runs[-1], axis=0).mean(axis=0)) < distance * height:
            runs[-1].append(vertebra)
        else:
            runs.append([vertebra])
    return np.stack([np.mean(run, axis=0) for run in runs])


def local_peaks(heatmap: np.ndarray, threshold: float) -> np.ndarray:
    """(x, y) of the local maxima above ``threshold`` (3×3 neighbourhood), each refined to sub-pixel precision by a
    parabola through the logarithms of the peak and its two neighbours along each axis (exact for a Gaussian peak:
    offset = (ln l − ln r) / (2 (ln l − 2 ln c + ln r)), clipped to ±0.5). A patch heatmap has a quarter of the
    patch's resolution, so the integer peak alone is off by up to two patch pixels. A peak on the border keeps its
    integer position along that axis."""
    peaks = (heatmap == ndimage.maximum_filter(heatmap, size=3)) & (heatmap > threshold)
    rows, cols = np.nonzero(peaks)
    logs = np.pad(np.log(np.maximum(heatmap, 1e-6)), 1, constant_values=np.nan)  # no neighbour: no refinement
    r, c = rows + 1, cols + 1

    def offset(before, centre, after):
        curvature = before - 2 * centre + after
        with np.errstate(divide="ignore", invalid="ignore"):
            shift = np.where(curvature < 0, (before - after) / (2 * curvature), 0.0)
        return np.clip(np.nan_to_num(shift), -0.5, 0.5)

    x = cols + offset(logs[r, c - 1], logs[r, c], logs[r, c + 1])
    y = rows + offset(logs[r - 1, c], logs[r, c], logs[r + 1, c])
    return np.stack([x, y], axis=1).astype(float)


class _Networks:
    def __init__(self, checkpoint: dict, config: Config, device):
        self.config, self.device = config, device
        self.retinanet = _retinanet(config).to(device).eval()
        self.hrnet = _hrnet(config).to(device).eval()
        self.sb1 = _simple_baseline(config, 68).to(device).eval()
        self.sb2 = _simple_baseline(config, 4).to(device).eval()
        for name in ("retinanet", "hrnet", "sb1", "sb2"):
            getattr(self, name).load_state_dict(checkpoint["state"][name])

    def _heatmaps(self, model, images: list[np.ndarray]) -> np.ndarray:
        return model(common.image_batch(images, self.device)).float().cpu().numpy()

    @torch.no_grad()
    def method_1(self, image: np.ndarray) -> np.ndarray:
        resized, box = letterbox(image, self.config.retina_size)
        output = self.retinanet([torch.from_numpy(resized)[None].to(self.device)])[0]
        boxes, scores = output["boxes"].float().cpu().numpy(), output["scores"].float().cpu().numpy()
        chosen = scores >= self.config.box_score
        if chosen.sum() < 3:
            chosen = np.argsort(-scores)[:17]
        boxes = box.to_original(boxes[chosen].reshape(-1, 2)).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros((0, 4, 2))
        boxes = filter_boxes(boxes[np.argsort(boxes[:, 1] + boxes[:, 3])], self.config.iou_threshold)
        aspect = self.config.hrnet_size[1] / self.config.hrnet_size[0]
        crop_boxes = [_vertebra_crop_box(b, aspect) for b in boxes]
        heatmaps = self._heatmaps(
            self.hrnet, [common.crop_resize(image, b, self.config.hrnet_size) for b in crop_boxes]
        )
        stride = self.hrnet.heatmap_stride
        corners = [
            _to_image((heatmaps_to_landmarks(h) + 0.5) * stride - 0.5, b, self.config.hrnet_size)
            for h, b in zip(heatmaps, crop_boxes)
        ]
        return merge_coincident(np.stack(corners), self.config.merge_distance)

    @torch.no_grad()
    def rough_points(self, image: np.ndarray) -> np.ndarray:
        """SimpleBaseline I's 68 points on the whole image (original pixels)."""
        resized, box = letterbox(image, self.config.sb1_size)
        stride = self.sb1.heatmap_stride
        return box.to_original((heatmaps_to_landmarks(self._heatmaps(self.sb1, [resized])[0]) + 0.5) * stride - 0.5)

    @torch.no_grad()
    def framing_confidence(self, images: list[np.ndarray]) -> np.ndarray:
        """SimpleBaseline I's confidence that each image frames a spine as the training images do: the mean over
        the 68 heatmaps of each heatmap's maximum (near 1 on training-like framings, low where the points are lost)."""
        scores = []
        for start in range(0, len(images), 64):
            batch = [letterbox(image, self.config.sb1_size)[0] for image in images[start : start + 64]]
            heatmaps = self._heatmaps(self.sb1, batch)
            scores.append(heatmaps.reshape(len(batch), heatmaps.shape[1], -1).max(axis=-1).mean(axis=-1))
        return np.concatenate(scores)

    def locate_spine(self, image: np.ndarray, framing: common.Framing) -> tuple[int, int, int, int]:
        """The candidate window (``common.framing_windows``) SimpleBaseline I is most confident in."""
        windows = common.framing_windows(
            image.shape,
            framing,
            heights=self.config.window_heights,
            step=self.config.window_step,
            columns=self.config.window_columns,
        )
        scores = self.framing_confidence([common.crop(image, window) for window in windows])
        return windows[int(np.argmax(scores))]

    @torch.no_grad()
    def patch_points(self, image: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        """The four corner-type point groups from the patch process."""
        corners = vertebra_corners(self.rough_points(image))
        corners = corners[np.argsort(corners.mean(axis=1)[:, 1])]
        aspect = self.config.sb2_size[1] / self.config.sb2_size[0]
        boxes = []
        for _ in range(self.config.patches_per_image):
            count = int(rng.integers(1, 4))
            boxes.append(patch_box(corners, int(rng.integers(0, len(corners) - count + 1)), count, rng, aspect))
        groups = [[] for _ in CORNER_GROUPS]
        patch_stride = self.sb2.heatmap_stride
        for start in range(0, len(boxes), 32):
            chunk = boxes[start : start + 32]
            heatmaps = self._heatmaps(self.sb2, [common.crop_resize(image, b, self.config.sb2_size) for b in chunk])
            for patch, patch_box_ in zip(heatmaps, chunk):
                for group, heatmap in enumerate(patch):
                    peaks = local_peaks(heatmap, self.config.peak_threshold)
                    if len(peaks):
                        groups[group].append(
                            _to_image((peaks + 0.5) * patch_stride - 0.5, patch_box_, self.config.sb2_size)
                        )
        return [np.concatenate(g) if g else np.zeros((0, 2)) for g in groups]


# ---------------------------------------------------------------- Method-2 post-processing
def _sorted_cluster_centres(points: np.ndarray, radius: float, min_samples: int) -> np.ndarray:
    if len(points) == 0:
        return np.zeros((0, 2))
    labels = DBSCAN(eps=radius, min_samples=min_samples).fit_predict(points)
    centres = np.array([points[labels == label].mean(axis=0) for label in sorted(set(labels) - {-1})]).reshape(-1, 2)
    return centres[np.argsort(centres[:, 1])]


def _drop_abnormal_ends(groups: list[np.ndarray]) -> list[np.ndarray]:
    """Drop a group's first/last cluster when its direction to the adjacent cluster is more than 45° off vertical, or
    when it breaks the y order top corners above bottom corners against the other groups."""
    out = []
    for centres in groups:
        keep = np.ones(len(centres), dtype=bool)
        for end, neighbour in ((0, 1), (len(centres) - 1, len(centres) - 2)):
            if len(centres) < 3:
                break
            dx, dy = np.abs(centres[end] - centres[neighbour])
            if dx > dy:
                keep[end] = False
        out.append(centres[keep])
    for top, bottom in ((0, 2), (1, 3)):
        if len(out[top]) and len(out[bottom]) and out[top][0, 1] > out[bottom][0, 1]:
            out[bottom] = out[bottom][1:]  # a bottom corner above the first top corner: its vertebra starts later
    return out


def _squeezed(groups: list[np.ndarray], ratio: float) -> list[np.ndarray]:
    """Remove the vertebrae whose diagonals differ by more than ``ratio`` (right-angled trapezium / parallelogram)."""
    count = min(len(g) for g in groups)
    if count == 0:
        return groups
    tl, tr, bl, br = (g[:count] for g in groups)
    diagonals = np.linalg.norm(br - tl, axis=1), np.linalg.norm(bl - tr, axis=1)
    normal = np.maximum(*diagonals) / np.maximum(np.minimum(*diagonals), 1e-6) <= ratio
    return [np.concatenate([g[:count][normal], g[count:]]) for g in groups]


def _kmeans_centres(points: np.ndarray, count: int, seed: int) -> np.ndarray:
    count = min(count, len(points))
    if count == 0:
        return np.zeros((0, 2))
    centres = KMeans(n_clusters=count, n_init=3, random_state=seed).fit(points).cluster_centers_
    return centres[np.argsort(centres[:, 1])]


def _drop_gap_outliers(centres: np.ndarray, ratio: float) -> np.ndarray:
    """Remove a centre whose x gap to both neighbours exceeds ``ratio`` times the y gap."""
    if len(centres) < 3:
        return centres
    gaps = np.abs(np.diff(centres, axis=0))
    abnormal = gaps[:, 0] > ratio * np.maximum(gaps[:, 1], 1e-6)
    keep = np.ones(len(centres), dtype=bool)
    for index in range(len(centres)):
        above = abnormal[index - 1] if index > 0 else True
        below = abnormal[index] if index < len(abnormal) else True
        keep[index] = not (above and below)
    return centres[keep]


def _suppress_small_tail_gaps(centres: np.ndarray, fraction: float) -> np.ndarray:
    if len(centres) < 5:
        return centres
    gaps = np.diff(centres[:, 1])
    typical = float(np.median(gaps))
    keep = np.ones(len(centres), dtype=bool)
    for index in range(len(centres) - 3, len(centres)):
        if gaps[index - 1] < fraction * typical:
            keep[index] = False
    return centres[keep]


def cluster_vertebrae(
    groups: list[np.ndarray], vertebra_height: float, *, config: Config, squeeze: bool, seed: int
) -> np.ndarray:
    """(V, 4, 2) vertebrae from the four corner-type point groups (Sect. 2.3)."""
    min_samples = max(2, config.patches_per_image // 40)
    clusters = [_sorted_cluster_centres(g, config.dbscan_radius * vertebra_height, min_samples) for g in groups]
    clusters = _drop_abnormal_ends(clusters)
    if squeeze:
        clusters = _squeezed(clusters, config.squeeze_ratio)
    count = int(np.median([len(c) for c in clusters]))
    if count == 0:
        return np.zeros((0, 4, 2))
    centres = []
    for points in groups:
        first = _drop_gap_outliers(_kmeans_centres(points, count, seed), config.gap_ratio)
        nearest = np.linalg.norm(points[:, None] - first[None], axis=-1).min(axis=1) if len(first) else np.zeros(0)
        refined = _kmeans_centres(points[nearest <= 1.5 * vertebra_height], len(first), seed)
        centres.append(_suppress_small_tail_gaps(refined, config.small_gap))
    count = min(len(c) for c in centres)
    return np.stack([c[:count] for c in centres], axis=1)


# ---------------------------------------------------------------- angles and fusion
def tilts(corners: np.ndarray) -> np.ndarray:
    """Signed angle (degrees, in [-90, 90)) of each vertebra's middle line (mean right corner − mean left corner),
    as a line orientation so a vertebra whose left and right corners were swapped keeps its tilt."""
    middle = corners[:, [1, 3]].mean(axis=1) - corners[:, [0, 2]].mean(axis=1)
    return (np.degrees(np.arctan2(middle[:, 1], middle[:, 0])) + 90.0) % 180.0 - 90.0


def select_vertebrae(corners: np.ndarray) -> tuple[int, int, int, int]:
    """(V0, V1, V2, V3): the most tilted vertebrae around the apex (Sect. 3.2)."""
    theta = tilts(corners)
    centres = corners.mean(axis=1)
    chord = centres[-1] - centres[0]
    relative = centres - centres[0]
    offsets = np.abs(chord[0] * relative[:, 1] - chord[1] * relative[:, 0]) / max(np.linalg.norm(chord), 1e-6)
    apex = int(np.argmax(offsets))
    best = None
    for sign in (1.0, -1.0):
        v1 = int(np.argmax(sign * theta[: apex + 1]))
        v2 = apex + int(np.argmax(-sign * theta[apex:]))
        v0 = int(np.argmax(-sign * theta[: v1 + 1]))
        v3 = v2 + int(np.argmax(sign * theta[v2:]))
        main = sign * (theta[v1] - theta[v2])
        if best is None or main > best[0]:
            best = (main, (v0, v1, v2, v3))
    return best[1]


def angles_at(corners: np.ndarray, selection: tuple[int, int, int, int]) -> np.ndarray:
    """[main, upper, lower] Cobb angles between the selected vertebrae (indices clipped to the vertebra count)."""
    theta = tilts(corners)
    v0, v1, v2, v3 = (min(index, len(theta) - 1) for index in selection)
    differences = np.abs(np.array([theta[v1] - theta[v2], theta[v0] - theta[v1], theta[v2] - theta[v3]]))
    return np.minimum(differences, 180.0 - differences)  # the angle between two lines is at most 90°


def passes_quality(corners: np.ndarray, selection, ratio: float) -> bool:
    """False when a selected vertebra has opposite sides whose lengths differ by more than ``ratio``."""
    for index in set(min(i, len(corners) - 1) for i in selection):
        tl, tr, bl, br = corners[index]
        for side_a, side_b in ((tr - tl, br - bl), (bl - tl, br - tr)):
            a, b = np.linalg.norm(side_a), np.linalg.norm(side_b)
            if max(a, b) > ratio * max(min(a, b), 1e-6):
                return False
    return True


def fuse(results: dict[str, np.ndarray], *, quality_ratio: float, preferred: str) -> np.ndarray | None:
    """Quality check, per-line majority vote on the selected vertebrae's positions (``preferred`` decides when no two
    outputs agree) and the mean of the outputs' angles at the agreed positions.

    The outputs need not find the same number of vertebrae, so a vote is on where a separation line's vertebra lies,
    not on its index: two outputs agree on a line when their selected vertebrae's centres are less than half a
    vertebra height apart vertically (the height is the median over the outputs of their mean vertebra height, top
    mid-point to bottom mid-point). The agreed position is the mean of the agreeing outputs' positions, and each
    output's angles are measured at its vertebrae nearest to the agreed positions."""
    usable = {name: corners for name, corners in results.items() if len(corners) >= 2}
    if not usable:
        return None
    selections = {name: select_vertebrae(corners) for name, corners in usable.items()}
    voters = sorted(name for name in usable if passes_quality(usable[name], selections[name], quality_ratio)) or sorted(
        usable
    )
    centres = {name: usable[name].mean(axis=1)[:, 1] for name in voters}
    height = float(np.median([vertebra_heights(usable[name]).mean() for name in voters]))
    agreed = []
    for line in range(4):
        position = {name: centres[name][selections[name][line]] for name in voters}
        support = {
            name: [other for other in voters if abs(position[other] - position[name]) < 0.5 * height] for name in voters
        }
        most = max(len(agreeing) for agreeing in support.values())
        if most < 2 and len(voters) > 1:
            choice = preferred if preferred in voters else voters[0]
        else:
            choice = min((name for name in voters if len(support[name]) == most), key=lambda name: name != preferred)
        agreed.append(float(np.mean([position[name] for name in support[choice]])))
    angles = [
        angles_at(usable[name], tuple(int(np.argmin(np.abs(centres[name] - y))) for y in agreed)) for name in voters
    ]
    return np.mean(angles, axis=0)


def predict(*, checkpoint: dict, data_dir, config: Config, device, progress: bool = True) -> dict:
    networks = _Networks(checkpoint, config, device)
    fallback = np.asarray(checkpoint["mean_angles"], dtype=np.float64)
    framing = common.Framing(**checkpoint["framing"])
    predictions = {}
    for number, case in enumerate(
        progress_bar(read_cases(data_dir, ground_truth=False), enabled=progress, desc="keypoint fusion")
    ):
        rng = np.random.default_rng([config.seed, number])
        image = enhance(case.image, config.enhancement)
        if config.auto_crop:
            start = networks.locate_spine(image, framing) if config.window_search else None
            image = common.crop(
                image, common.refine_crop(networks.rough_points, image, framing, rounds=config.crop_rounds, start=start)
            )
        groups = networks.patch_points(image, rng)
        # the image frames the spine like the training images, so the spine spans a known share of its height
        vertebra_height = image.shape[0] / (1.0 + framing.top + framing.bottom) / 16.0
        results = {
            "method-1": networks.method_1(image),
            "method-2": cluster_vertebrae(groups, vertebra_height, config=config, squeeze=False, seed=config.seed),
            "method-2-squeezed": cluster_vertebrae(
                groups, vertebra_height, config=config, squeeze=True, seed=config.seed
            ),
        }
        angles = fuse(results, quality_ratio=config.quality_ratio, preferred="method-2")
        if angles is None:  # no output found two vertebrae
            note_fallback(case.id, "training-mean")
            angles = fallback
        predictions[case.id] = common.angle_record(angles)
    return predictions
