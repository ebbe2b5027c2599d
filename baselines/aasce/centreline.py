"""Cobb angles from the spine centreline segmented by two cascaded U-Nets (Dubost et al., Erasmus MC, CSI 2019, AASCE).

Paper -> this module:
- Sect. 2.2 (cascade): U-Net 1 maps the X-ray to the whole-spine segmentation, U-Net 2 maps U-Net 1's output to
  the centreline segmentation; both are trained end to end at once with a mean-squared-error loss on both outputs
  and the Adadelta optimiser -> `Cascade` (two ``baselines.nn.unet.UNet`` with few feature maps and batch norm).
  Ground truths are drawn from the landmarks: the spine outline (`spine_targets.spine_mask`) and the midline
  through the endplate middles (`spine_targets.centreline_mask`).
- Sect. 2.2 (augmentation): random rotation, translation and horizontal flip, plus either Gaussian noise or
  brightness/contrast changes (Table 1's "Augmentation" column -> ``intensity`` "gaussian" | "bc").
- Sect. 2.1 (pre-processing): each image divided by its own maximum (`baselines.data.enhance` "none").
- Sect. 2.3 (post-processing, `angles_from_centreline`): threshold at 0.25, removal of connected components smaller
  than ``min_component`` (a fraction of the image area; the paper's 40 x 140 pixels at full resolution), the left
  and right borders of the remaining mask per row and their middle as the centreline x(y), smoothing with the heat
  equation solved by explicit Euler steps (coefficient 0.01, ``heat_iterations``; 65000 in the paper at full
  resolution) or, as the paper's discussion suggests for speed, a Gaussian filter with the same diffusion length
  (``smoothing="gaussian"``). Both thresholds are kept consistent with the working resolution: ``min_component``
  is a fraction of the image area, 0.002 being the paper's 40 × 140 pixels in a full-resolution frame of
  2800 × 1000 pixels, and with ``heat_reference_height`` (2800, that frame's height, in the ``paper`` preset) the
  paper's Euler steps are counted on that frame and rescaled by (height / 2800)² on the working grid
  (``euler_steps``; the setting's default, None, counts the steps on the working grid), since the diffusion length
  sqrt(2 · 0.01 · steps) grows with the square root of the steps:
  65000 steps smooth over about 1.3 % of the frame's height at any working height (at 512 rows, 2173 steps; the
  unscaled 65000 would smooth over 7 %). The ``tiny`` and ``standard`` presets give their steps on their own grids
  (``heat_reference_height=None``, 200 at 32 rows and 800 at 96 rows); our addition ``largest_component`` keeps only
  the largest remaining component, since
  without manual cropping false responses at the image edge can survive the size filter), the derivative dx/dy, its
  values at 19 evenly spaced points (the 18 discs between
  the 17 vertebrae plus the ends), and Eq. 1: the angle between the tangents at the points of maximum and minimum
  slope gives the major angle; the same rule above and below that region gives the upper and lower angles
  (`spine_targets.tangent_slopes_to_cobb`). Returned in the challenge's positional order: major, upper, lower.
- Sect. 2.4 (ensemble of ensembles): ``ensembles`` lists the ensemble sizes (the paper's best: 4 & 7 & 4 & 4 & 5).
  The training cases are split into ``folds`` subsets; model k of the whole collection leaves out subset
  k mod folds. Within an ensemble the centreline maps are averaged before the angles are computed; the angles of
  the ensembles are then averaged.
- Table 1 "Crop": with ``crop=True`` training images are cropped to the vertebral column (top and bottom of the
  landmarks plus ``crop_margin``), and at test time, instead of the paper's manual cropping, the image is first
  segmented whole, then cropped to the rows where the averaged spine map exceeds 0.5 (plus the margin) and
  segmented again (our addition ``length_prior``: the crop frames the spine as the cropped training images do, in
  width too (``common.Framing``), since the test images are also wider; the largest component of the spine map is cut
  to the T1-L5 length
  the training images' proportions allow — ``common.Framing.trim_mask`` — and the centreline above the cut is
  ignored, since the network may follow the spine into the neck and skull, which cropped training images never
  show); ``crop_rounds`` repeats that crop on its own result (our addition: on the whole test image the
  spine is seen smaller than in training, so the first crop is loose and the second pass sees it at training scale).
Differences: no pretrained weights (none used in the paper either); the image size, channel widths and number of
Euler steps are scaled down in the tiny/standard presets.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from baselines.aasce import common
from baselines.aasce.common import intensity_augment, random_affine
from baselines.data import load_cases
from baselines.nn.spine_targets import centreline_mask, spine_mask, tangent_slopes_to_cobb
from baselines.nn.training import autocast, fit, resolve_device, seed_everything
from baselines.nn.training import progress as progress_bar
from baselines.nn.unet import UNet
from baselines.report import note_fallback

TASK = "aasce-cobb"
PAPER = (
    "Dubost, Collery, Renaudier, Roc et al.: cascaded CNNs for spine centreline segmentation and "
    "Cobb angles (CSI 2019, AASCE)"
)


@dataclass(frozen=True)
class Config:
    height: int = 512
    width_px: int = 256
    base_channels: int = 8
    depth: int = 4
    centreline_width: int = 5
    intensity: str = "bc"  # "gaussian" | "bc" | "none"
    rotation: float = 5.0  # degrees
    translate: float = 0.05
    flip: bool = True
    epochs: int = 60
    batch_size: int = 4
    lr: float = 1.0  # Adadelta
    threshold: float = 0.25
    min_component: float = 0.002  # of the image area
    largest_component: bool = True  # our addition: keep only the largest remaining component
    smoothing: str = "heat"  # "heat" | "gaussian"
    heat_coefficient: float = 0.01
    heat_iterations: int = 65000
    # rows on which heat_iterations are counted (2800 in ``paper``); None: the working grid (the default, so that
    # checkpoints saved before this setting existed predict as they did)
    heat_reference_height: int | None = None
    tangent_points: int = 19
    ensembles: tuple[int, ...] = (4, 7, 4, 4, 5)
    folds: int = 9
    crop: bool = True
    crop_margin: float = 0.03  # of the image height, above and below
    crop_rounds: int = 3  # test-time crop repeated on its own result (see module docstring)
    length_prior: bool = True  # cut the spine map to the training proportions (see module docstring)
    seed: int = 0


PRESETS = {
    "tiny": Config(
        height=32,
        width_px=16,
        base_channels=4,
        depth=2,
        centreline_width=2,
        epochs=3,
        batch_size=4,
        heat_iterations=200,
        ensembles=(1, 1),
        folds=2,
    ),
    "standard": Config(
        height=96,
        width_px=48,
        base_channels=6,
        depth=3,
        centreline_width=2,
        epochs=12,
        batch_size=4,
        heat_iterations=800,
        ensembles=(2, 1),
        folds=3,
    ),
    "paper": Config(heat_reference_height=2800),
}


class Cascade(nn.Module):
    """U-Net 1 (image -> spine) feeding U-Net 2 (spine probability -> centreline); both outputs are sigmoids."""

    def __init__(self, config: Config):
        super().__init__()
        self.spine = UNet(in_channels=1, out_channels=1, base_channels=config.base_channels, depth=config.depth)
        self.centreline = UNet(in_channels=1, out_channels=1, base_channels=config.base_channels, depth=config.depth)

    def forward(self, x):
        spine = torch.sigmoid(self.spine(x))
        return spine, torch.sigmoid(self.centreline(spine))


def _crop_box(rows: np.ndarray, height: int, width: int, margin: float) -> tuple[float, float, float, float]:
    pad = margin * height
    return 0.0, float(rows.min() - pad), float(width), float(rows.max() + 1 + pad)


def _training_cases(config: Config, data_dir) -> list:
    size = (config.height, config.width_px)
    cases = load_cases(data_dir, size=size, ground_truth=True)
    if config.crop:
        cases = [c.cropped(_crop_box(c.landmarks[:, 1], *size, config.crop_margin), size) for c in cases]
    return cases


def _train_model(config: Config, arrays: dict, device, rng, progress: bool, desc: str) -> tuple[Cascade, list[float]]:
    model = Cascade(config).to(device)
    optimiser = torch.optim.Adadelta(model.parameters(), lr=config.lr)

    def loss_fn(batch):
        maps = torch.stack([batch["images"], batch["spine"], batch["centre"]], dim=1)
        maps = random_affine(maps, rng, degrees=config.rotation, translate=config.translate, flip=config.flip)
        images = intensity_augment(maps[:, :1], rng, kind=config.intensity)
        spine, centre = model(images)
        return F.mse_loss(spine.float(), maps[:, 1:2]) + F.mse_loss(centre.float(), maps[:, 2:3])

    model.train()
    losses = fit(
        model.parameters(),
        arrays=arrays,
        loss_fn=loss_fn,
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimiser=optimiser,
        device=device,
        rng=rng,
        desc=desc,
        progress=progress,
    )
    return model, losses


def train(*, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    size = (config.height, config.width_px)
    cases = _training_cases(config, data_dir)
    arrays = {
        "images": np.stack([c.image for c in cases]),
        "spine": np.stack([spine_mask(c.landmarks, size) for c in cases]),
        "centre": np.stack([centreline_mask(c.landmarks, size, width=config.centreline_width) for c in cases]),
    }
    fold_of = rng.permutation(len(cases)) % max(1, config.folds)
    states, losses = [], []
    for k in range(sum(config.ensembles)):
        keep = fold_of != k % config.folds if config.folds > 1 else np.ones(len(cases), bool)
        model, history = _train_model(
            config,
            {key: v[keep] for key, v in arrays.items()},
            device,
            rng,
            progress,
            desc=f"centreline model {k + 1}/{sum(config.ensembles)}",
        )
        states.append({name: value.cpu() for name, value in model.state_dict().items()})
        losses.append(history)
    # the returned history is the step-wise mean over the collection's models (each saw the same number of epochs)
    steps = min(len(h) for h in losses)
    return {
        "state": states,
        "losses": list(np.mean([h[:steps] for h in losses], axis=0)),
        "config": asdict(config),
        "framing": common.framing_from_cases(cases).to_dict(),
    }


def centreline_curve(
    probability: np.ndarray, *, threshold: float, min_component: float, largest_only: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and middle-of-borders x per row of the thresholded centreline map after removing small components
    (and, with `largest_only`, every component but the largest)."""
    mask = probability >= threshold
    labels, count = ndimage.label(mask)
    if count:
        sizes = ndimage.sum(mask, labels, index=np.arange(1, count + 1))
        keep = 1 + np.flatnonzero(sizes >= min_component * mask.size)
        if largest_only and len(keep):
            keep = [1 + int(np.argmax(sizes))]
        mask = np.isin(labels, keep)
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return rows, rows.astype(float)
    left = np.array([np.flatnonzero(mask[r])[0] for r in rows], dtype=float)
    right = np.array([np.flatnonzero(mask[r])[-1] for r in rows], dtype=float)
    return rows, (left + right) / 2


def smooth_curve(x: np.ndarray, *, method: str, coefficient: float, iterations: int) -> np.ndarray:
    """Heat-equation smoothing x <- x + c * (x[i-1] - 2x[i] + x[i+1]) for `iterations` explicit Euler steps with
    insulated (reflecting) ends, or its closed form: a Gaussian of std sqrt(2 c iterations)."""
    x = np.asarray(x, dtype=np.float64).copy()
    if method == "gaussian":
        return ndimage.gaussian_filter1d(x, np.sqrt(2 * coefficient * iterations), mode="nearest")
    if method != "heat":
        raise ValueError(f"smoothing must be 'heat' or 'gaussian', got {method!r}")
    for _ in range(iterations):
        padded = np.concatenate([x[:1], x, x[-1:]])
        x += coefficient * (padded[:-2] - 2 * x + padded[2:])
    return x


def euler_steps(config: Config) -> int:
    """Heat-equation Euler steps on the working grid (``config.height`` rows): ``heat_iterations`` rescaled from
    ``heat_reference_height`` rows by the squared height ratio, which keeps the diffusion length the same fraction of
    the image height (module docstring); unscaled when there is no reference height."""
    if config.heat_reference_height is None:
        return config.heat_iterations
    return max(1, round(config.heat_iterations * (config.height / config.heat_reference_height) ** 2))


def angles_from_centreline(probability: np.ndarray, config: Config) -> np.ndarray | None:
    """[major, upper, lower] Cobb angles from an averaged centreline probability map (Sect. 2.3); None when the
    thresholded map holds fewer than 3 rows of centreline."""
    rows, x = centreline_curve(
        probability,
        threshold=config.threshold,
        min_component=config.min_component,
        largest_only=config.largest_component,
    )
    if len(rows) < 3:
        return None
    full_rows = np.arange(rows[0], rows[-1] + 1)
    x = np.interp(full_rows, rows, x)  # bridge rows where the thresholded line has gaps
    smooth = smooth_curve(
        x, method=config.smoothing, coefficient=config.heat_coefficient, iterations=euler_steps(config)
    )
    slope = np.gradient(smooth)
    samples = np.linspace(0, len(full_rows) - 1, config.tangent_points)
    return tangent_slopes_to_cobb(np.interp(samples, np.arange(len(full_rows)), slope))


def _average_maps(models: list[Cascade], image: np.ndarray, device) -> tuple[np.ndarray, np.ndarray]:
    x = torch.as_tensor(image, device=device)[None, None]
    with torch.no_grad(), autocast(device):
        outputs = [model(x) for model in models]
    spine = torch.stack([o[0].float() for o in outputs]).mean(0)[0, 0].cpu().numpy()
    centre = torch.stack([o[1].float() for o in outputs]).mean(0)[0, 0].cpu().numpy()
    return spine, centre


def predict(*, checkpoint, data_dir, config: Config, device="auto", progress=True) -> dict:
    device = resolve_device(device)
    models = []
    for state in checkpoint["state"]:
        model = Cascade(config).to(device)
        model.load_state_dict(state)
        models.append(model.eval())
    groups, start = [], 0
    for size in config.ensembles:
        groups.append(models[start : start + size])
        start += size
    size = (config.height, config.width_px)
    framing = common.Framing(**checkpoint["framing"]) if config.length_prior and "framing" in checkpoint else None

    def spine_mask_of(spine: np.ndarray) -> np.ndarray:
        mask = spine > 0.5
        return framing.trim_mask(common.largest_component(mask)) if framing is not None else mask

    out = {}
    for case in progress_bar(
        load_cases(data_dir, size=size, ground_truth=False), enabled=progress, desc="centreline predict"
    ):
        for _ in range(config.crop_rounds if config.crop else 0):
            spine, _ = _average_maps(models, case.image, device)
            rows, cols = np.nonzero(spine_mask_of(spine))
            if len(rows) < 2:
                break
            if framing is None:
                case = case.cropped(_crop_box(rows, *size, config.crop_margin), size)
                continue
            # frame the spine as the (cropped) training images frame it, in both directions
            points = case.to_original(np.stack([cols, rows], axis=1).astype(float))
            x0, y0, x1, y1 = framing.crop_box(points, case.raw.shape)
            case = case.cropped(tuple(case.to_resized(np.array([[x0, y0], [x1, y1]], dtype=float)).ravel()), size)
        angles = []
        for group in groups:
            spine, centre = _average_maps(group, case.image, device)
            if framing is not None:
                rows = np.flatnonzero(spine_mask_of(spine).any(axis=1))
                if len(rows):
                    centre = centre.copy()
                    centre[: rows[0]] = 0.0  # above the cut: outside the T1-L5 span the proportions allow
            angles.append(angles_from_centreline(centre, config))
        if any(group_angles is None for group_angles in angles):
            # an ensemble without a centreline contributes straight-spine zeros to the mean: the case is a fallback
            note_fallback(case.id, "zeros")
        out[case.id] = {
            "angles": [float(a) for a in np.mean([np.zeros(3) if a is None else a for a in angles], axis=0)]
        }
    return out
