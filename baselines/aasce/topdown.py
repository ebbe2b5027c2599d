"""Top-down spine curvature estimation (Zhao, Wang, Yang, Li, "Automatic Spine Curvature Estimation by a Top-Down
Approach", CSI 2019 / AASCE).

Pipeline and the paper section each part follows:
- Sect. 2.1, spine segmentation: RU-Net — a U-Net whose double convolutions are residual blocks, 2×2 max pooling
  down, bilinear upsampling up (``baselines.nn.unet.residual_unet``), two output maps (spine, background), softmax
  cross-entropy. The spine target is the vertebrae plus the discs between them, drawn from the 68 landmarks.
- Sect. 2.2, the spine's trend: the largest connected component of the predicted mask gives a left and a right
  boundary (first and last spine pixel of every row); every left-boundary point is joined to its nearest
  right-boundary point and vice versa, the midpoints of those segments trace the spine ("the water in the pipe"), and
  a least-squares polynomial x = f(y) of degree ``curve_degree`` is fitted to them.
- Sect. 2.2, Cobb angles from the function: 17 vertebra levels are spread evenly over the segmented extent, each
  vertebra oriented perpendicular to the curve's tangent (tilt −atan f'(y)) and sized from the mask width, and the
  angles are read with the challenge's rules (``evaluators.cobb.cobb_angles``). The Cobb angles are decided where the
  spine bends most — at the levels where the vertebra tilt reaches an extreme (the ends of each curve, on either
  side of each curvature maximum) — and those are the levels the next step corrects.
- Sect. 2.3, vertebra angle correction: around each such vertebra, a Canny edge map (``skimage.feature.canny``) is
  weighed against the directional derivative of a flat (anisotropic) Gaussian kernel rotated over a half turn (here
  within ±``max_correction`` degrees of the curve's tilt, so the lateral vertebra edges cannot win); the orientation
  with the largest response replaces the curve's tilt.
Ablation switches: ``angle_correction`` (Sect. 2.3 on/off), ``curve_degree``, ``auto_crop``.

Where this implementation differs: random initialisation and small CPU presets; the paper does not give its
polynomial degree, image size or kernel widths (chosen here and configurable); test images are cropped
automatically: a first segmentation pass finds the spine, the image is cropped to frame it as the training images do
(``common.Framing``), and segmentation runs again on the crop; the crop is refined ``crop_rounds`` times
(``common.refine_crop``), since on the whole image the spine is seen at a smaller scale than in training; a mask
longer than the training proportions allow (T1-L5 length / vertebra width) is cut to that length from the bottom
(``length_prior``, ``common.Framing.trim_mask``), since without manual cropping the network may follow the spine up
into the neck and skull, which the cropped training images never show. An empty segmentation gives the training-set
mean angles.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import fftconvolve
from skimage.feature import canny
from skimage.transform import rescale

from baselines.aasce import common
from baselines.data import Augmentation, augment, enhance, letterbox, prepare, read_cases
from baselines.nn.converters import landmarks_to_mask
from baselines.nn.training import batches, optimise, seed_everything, state_to_cpu
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import residual_unet
from baselines.report import note_fallback
from evaluators.cobb import cobb_angles

TASK = "aasce-cobb"
PAPER = (
    "Zhao, Wang, Yang, Li: top-down spine curvature estimation (RU-Net, spine function, angle "
    "correction), CSI 2019 AASCE"
)
N_VERTEBRAE = 17
CORRECTION_SCALE = 12.0


@dataclass(frozen=True)
class Config:
    seed: int = 0
    size: tuple[int, int] = (512, 256)
    base_channels: int = 32
    depth: int = 4
    steps: int = 6000
    batch_size: int = 8
    lr: float = 1e-3
    augmentation: Augmentation = field(default_factory=Augmentation)
    curve_degree: int = 5
    angle_correction: bool = True
    max_correction: float = 15.0
    canny_sigma: float = 1.0
    auto_crop: bool = True
    crop_rounds: int = 3  # rounds of the automatic crop (``common.refine_crop``)
    length_prior: bool = True  # cut masks longer than the training proportions allow (``Framing.trim_mask``)
    min_spine_pixels: int = 20


PRESETS = {
    "tiny": Config(size=(96, 48), base_channels=4, depth=3, steps=15, batch_size=4, lr=3e-3),
    "standard": Config(
        size=(192, 96),
        base_channels=12,
        depth=4,
        steps=300,
        batch_size=6,
        lr=2e-3,
        augmentation=Augmentation(rotation_degrees=10, scale_range=(0.9, 1.1), translate_fraction=0.05),
    ),
    "paper": Config(),
}


def _build(config: Config) -> torch.nn.Module:
    return residual_unet(in_channels=1, out_channels=2, base_channels=config.base_channels, depth=config.depth)


def train(*, data_dir, config: Config, device, progress: bool = True) -> dict:
    rng = seed_everything(config.seed)
    cases = read_cases(data_dir, ground_truth=True)
    prepared = prepare(cases, size=config.size)
    model = _build(config).to(device).train()
    stream = batches(len(prepared), config.batch_size, rng=rng)

    def loss_fn(step: int) -> torch.Tensor:
        images, masks = [], []
        for index in next(stream):
            image, landmarks, _ = augment(
                prepared[index].image, prepared[index].landmarks, config=config.augmentation, rng=rng
            )
            images.append(image)
            masks.append(landmarks_to_mask(landmarks, config.size, gap_class=True) > 0)
        target = torch.from_numpy(np.stack(masks).astype(np.int64)).to(device)
        return F.cross_entropy(model(common.image_batch(images, device)).float(), target)

    losses = optimise(
        loss_fn, model.parameters(), steps=config.steps, lr=config.lr, device=device, progress=progress, desc="RU-Net"
    )
    return {
        "state": state_to_cpu(model),
        "losses": losses,
        "framing": common.framing_from_cases(cases).to_dict(),
        "mean_angles": np.mean([case.angles for case in cases], axis=0),
    }


def spine_midpoints(mask: np.ndarray) -> np.ndarray:
    """Midpoints between each boundary point and its nearest point on the opposite boundary, (N, 2) as (x, y)."""
    rows = np.nonzero(mask.any(axis=1))[0]
    if len(rows) < 2:
        return np.zeros((0, 2))
    left = np.array([[np.argmax(mask[r]), r] for r in rows], dtype=float)
    right = np.array([[mask.shape[1] - 1 - np.argmax(mask[r, ::-1]), r] for r in rows], dtype=float)
    midpoints = []
    for source, target in ((left, right), (right, left)):
        distances = ((source[:, None, :] - target[None, :, :]) ** 2).sum(axis=-1)
        midpoints.append((source + target[distances.argmin(axis=1)]) / 2)
    return np.concatenate(midpoints)


class SpineFunction:
    """x = f(y) fitted by least squares, with the tilt of a vertebra perpendicular to the curve at height y."""

    def __init__(self, points: np.ndarray, degree: int):
        self.centre, self.spread = points[:, 1].mean(), max(points[:, 1].std(), 1e-6)
        degree = min(degree, max(len(np.unique(points[:, 1])) - 1, 1))
        self.coefficients = np.polyfit((points[:, 1] - self.centre) / self.spread, points[:, 0], degree)

    def __call__(self, y) -> np.ndarray:
        return np.polyval(self.coefficients, (np.asarray(y, dtype=float) - self.centre) / self.spread)

    def tilt(self, y) -> np.ndarray:
        """Radians; the direction (cos, sin) of a vertebra's left-to-right axis in image coordinates."""
        slope = (
            np.polyval(np.polyder(self.coefficients), (np.asarray(y, dtype=float) - self.centre) / self.spread)
            / self.spread
        )
        return -np.arctan(slope)


def tilt_extremes(tilts: np.ndarray) -> list[int]:
    """Levels where the vertebra tilt reaches a local extreme (end vertebrae of the curves), plus both ends."""
    levels = {0, len(tilts) - 1}
    for index in range(1, len(tilts) - 1):
        if (tilts[index] - tilts[index - 1]) * (tilts[index + 1] - tilts[index]) <= 0:
            levels.add(index)
    return sorted(levels)


def oriented_kernel(angle: float, *, sigma_along: float, sigma_across: float) -> np.ndarray:
    """Derivative across ``angle`` of a flat Gaussian elongated along ``angle`` (radians, image coordinates)."""
    radius = int(np.ceil(2.5 * max(sigma_along, sigma_across)))
    ys, xs = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(float)
    along = xs * np.cos(angle) + ys * np.sin(angle)
    across = -xs * np.sin(angle) + ys * np.cos(angle)
    gaussian = np.exp(-(along**2) / (2 * sigma_along**2) - across**2 / (2 * sigma_across**2))
    kernel = -across / sigma_across**2 * gaussian
    return kernel / np.abs(kernel).sum()


def corrected_tilt(
    image: np.ndarray, centre, half_width: float, half_height: float, tilt: float, *, config: Config
) -> float:
    """The orientation (radians) within ±``max_correction`` of ``tilt`` whose rotated flat-Gaussian derivative
    responds most strongly on the Canny edges around the vertebra: a kernel aligned with the endplates integrates
    their gradient along its whole length, a misaligned one only over a short piece."""
    radius = int(np.ceil(1.6 * max(half_width, half_height)))
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    y0, y1 = max(cy - radius, 0), min(cy + radius + 1, image.shape[0])
    x0, x1 = max(cx - radius, 0), min(cx + radius + 1, image.shape[1])
    if y1 - y0 < 5 or x1 - x0 < 5:
        return tilt
    # work at a fixed scale (vertebra half-width ≈ CORRECTION_SCALE px) so the cost does not grow with the image
    factor = min(1.0, CORRECTION_SCALE / max(half_width, 1.0))
    window = rescale(image[y0:y1, x0:x1].astype(float), factor, order=1, anti_aliasing=factor < 1)
    centre = (np.asarray(centre, dtype=float) - [x0, y0] + 0.5) * factor - 0.5
    half_width, half_height = half_width * factor, half_height * factor
    edges = canny(window, sigma=config.canny_sigma)
    ys, xs = np.mgrid[: window.shape[0], : window.shape[1]]
    # only the edges of this vertebra: inside an ellipse around its centre
    inside = ((xs - centre[0]) / (1.2 * half_width)) ** 2 + ((ys - centre[1]) / (1.5 * max(half_height, 1.0))) ** 2 <= 1
    weights = (edges & inside).astype(float)
    if not weights.any():
        return tilt
    best, best_response = tilt, -1.0
    for candidate in tilt + np.deg2rad(np.arange(-config.max_correction, config.max_correction + 0.5, 1.0)):
        kernel = oriented_kernel(candidate, sigma_along=0.6 * half_width, sigma_across=1.0)
        response = float((weights * np.abs(fftconvolve(window, kernel, mode="same"))).sum())
        if response > best_response:
            best, best_response = candidate, response
    return float(best)


def vertebra_landmarks(
    centres: np.ndarray, tilts: np.ndarray, half_widths: np.ndarray, half_height: float
) -> np.ndarray:
    right = np.stack([np.cos(tilts), np.sin(tilts)], axis=1)
    down = np.stack([-np.sin(tilts), np.cos(tilts)], axis=1)
    w, h = half_widths[:, None], half_height
    corners = [
        centres - w * right - h * down,
        centres + w * right - h * down,
        centres - w * right + h * down,
        centres + w * right + h * down,
    ]
    return np.stack(corners, axis=1).reshape(-1, 2)


class _Predictor:
    def __init__(self, checkpoint: dict, config: Config, device):
        self.config, self.device = config, device
        self.framing = common.Framing(**checkpoint["framing"])
        self.model = _build(config).to(device).eval()
        self.model.load_state_dict(checkpoint["state"])

    @torch.no_grad()
    def mask(self, image: np.ndarray) -> tuple[np.ndarray, object]:
        resized, box = letterbox(image, self.config.size)
        logits = self.model(common.image_batch([resized], self.device)).float()
        mask = common.largest_component(logits.argmax(dim=1)[0].cpu().numpy() == 1)
        return (self.framing.trim_mask(mask) if self.config.length_prior else mask), box

    def spine_points(self, image: np.ndarray) -> np.ndarray:
        mask, box = self.mask(image)
        rows, cols = np.nonzero(mask)
        return (
            box.to_original(np.stack([cols, rows], axis=1))
            if len(rows) >= self.config.min_spine_pixels
            else np.zeros((0, 2))
        )

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        offset = np.zeros(2)
        if self.config.auto_crop:
            x0, y0, x1, y1 = common.refine_crop(self.spine_points, image, self.framing, rounds=self.config.crop_rounds)
            image, offset = common.crop(image, (x0, y0, x1, y1)), np.array([x0, y0], dtype=float)
        mask, box = self.mask(image)
        if mask.sum() < self.config.min_spine_pixels:
            return None
        midpoints = box.to_original(spine_midpoints(mask))
        curve = SpineFunction(midpoints, self.config.curve_degree)
        rows = np.nonzero(mask.any(axis=1))[0]
        top, bottom = box.to_original([[0, rows.min()], [0, rows.max()]])[:, 1]
        spacing = (bottom - top) / N_VERTEBRAE
        levels = top + (np.arange(N_VERTEBRAE) + 0.5) * spacing
        widths = mask.sum(axis=1).astype(float) / box.scale[0]
        level_rows = np.clip(
            np.round(box.to_resized(np.stack([np.zeros_like(levels), levels], 1))[:, 1]).astype(int),
            rows.min(),
            rows.max(),
        )
        half_widths = np.maximum(widths[level_rows] / 2, 1.0)
        centres = np.stack([curve(levels), levels], axis=1)
        tilts = curve.tilt(levels)
        if self.config.angle_correction:
            for level in tilt_extremes(tilts):
                tilts[level] = corrected_tilt(
                    image, centres[level], half_widths[level], 0.35 * spacing, tilts[level], config=self.config
                )
        return vertebra_landmarks(centres + offset, tilts, half_widths, 0.35 * spacing)

    def predict_angles(self, image: np.ndarray, image_height: int) -> np.ndarray | None:
        landmarks = self.landmarks(image)
        return None if landmarks is None else cobb_angles(landmarks, image_height)


def predict(*, checkpoint: dict, data_dir, config: Config, device, progress: bool = True) -> dict:
    predictor = _Predictor(checkpoint, config, device)
    fallback = np.asarray(checkpoint["mean_angles"], dtype=np.float64)
    predictions = {}
    for case in progress_bar(read_cases(data_dir, ground_truth=False), enabled=progress, desc="top-down"):
        angles = predictor.predict_angles(enhance(case.image), case.shape[0])
        if angles is None:  # no spine found, or too few vertebra levels on it
            note_fallback(case.id, "training-mean")
            angles = fallback
        predictions[case.id] = common.angle_record(angles)
    return predictions
