"""Vertebral fracture detection with a dual-pathway 3D voxel classifier, after Nicolaes et al. (CSI 2019).

Which part follows which section of the paper:

- Preprocessing (Sect. 3): resampling to 1 mm isotropic voxels and standardising each volume to zero mean and unit
  standard deviation (``prepare``).
- Label images from sparse annotations (Sect. 3.1): an ellipsoid around every annotated centroid, labelled normal
  or fracture (all Genant grades >= 1 merged), flattened along the longitudinal axis for fractured vertebrae;
  voxels outside the ellipsoids are background (``label_image``). The paper does not give the ellipsoid size: here
  the semi-axes are fractions of the patient's median distance between neighbouring centroids.
- The network (Sect. 3.2, Fig. 2, Table 1): eight valid 3x3x3 convolutions per pathway (receptive field 17^3), a
  second pathway seeing the input average-pooled by 3 (receptive field 51^3), its output upsampled back and
  concatenated, two fully connected (1x1x1) layers and the 3-class layer: 11 layers, about 230 K parameters
  (``DualPathwayNet``; ``count_parameters``). The ``1slice`` variant uses 1x3x3 kernels in the sagittal plane
  throughout, ``5slices`` a 5x3x3 first layer spanning five sagittal slices; both get wider layers so that their
  parameter count matches the 3D model (``variant_widths``).
- Training (Sect. 3.2, "training regime"): segments sampled with class weights from the label images, Gaussian
  intensity noise and random flips along the three axes, voxel-wise cross-entropy (``segment_loss``), RMSProp with
  L1 and L2 penalties, learning rate reduced when the validation loss plateaus (validation = 15% of the training
  patients, the best-validation weights are kept, as in Sect. 4).
- Inference: grid tiling of the whole volume into a 3-class probability map (``probability_map``).
- Patient-level aggregation (Sect. 3.3): connected components of voxels above a probability threshold, components
  smaller than a noise threshold discarded; every (probability, noise) pair is one classifier and the pairs are
  swept into an ROC convex hull (``patient_hull``). ``predict`` reports one score per patient for the configured
  noise threshold: the highest probability threshold at which a large-enough component survives.
- Vertebra-level aggregation (Sect. 3.3, 4): fracture probabilities in a cube (10 mm) around each centroid,
  averaged with Gaussian distance weights; centroids get 3 mm Gaussian noise per axis in the cross-validation to
  simulate automatic localisation (``vertebra_scores``).
- Evaluation (Sect. 4): stratified 5-fold cross-validation with at least two negative patients per fold and
  bootstrapped ROC AUCs (``cross_validate``, ``summarise``).

Where this differs from the paper: no DeepMedic code or pretrained weights (a plain torch network with batch
normalisation and ReLU); generated phantom data instead of 90 clinical scans; the ``tiny`` and ``standard`` presets
use narrower layers and far fewer segments and epochs so that they run on a CPU, ``standard`` works at 3 mm
(``tiny`` at 4 mm) instead of 1 mm (receptive fields of 51 and 153 mm; the small generated volumes have about
3 x 3 x 5 mm voxels anyway), and ``tiny`` asks for 2 folds with one negative patient each (``paper`` keeps the
published settings: 1 mm, 230 K parameters, learning rate 1e-3, 35 epochs, voxel-wise loss, flips along all axes).
``standard`` also departs from the training regime, because with its short budget the paper's regime left the voxel
classifier at chance (vertebra AUC about 0.5): at 3 mm a fractured vertebra's label ellipsoid holds only about 130
voxels, so a 12^3-output segment centred on a fracture voxel was mostly background and the voxel-wise loss was
dominated by the easy background class. ``standard`` therefore uses 6^3-output segments (twice as many per step for
the same cost), fewer background-centred segments (sample weights 0.2 / 0.4 / 0.4), the class-balanced loss
(``loss_balance="class"``: the mean over classes of each class's mean cross-entropy), flips only along the
left-right axis (flips along the longitudinal and anterior-posterior axes made the anatomy harder to learn in a few
epochs), learning rate 5e-4 and 14 epochs of 240 segments; these settings were chosen on generated sets with seed 1
(the benchmark reports seed 0).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn
from tqdm.auto import tqdm

from baselines.fracture.common import (
    TASK,
    FractureCase,
    case_ids,
    patient_fractured,
    physical_to_index,
    read_case,
    read_grades,
    resample,
    standardise,
    stratified_folds,
)
from baselines.nn.blocks3d import ConvNormAct3d
from baselines.nn.training import resolve_device, seed_everything

__all__ = ["TASK", "PAPER", "Config", "PRESETS", "train", "predict", "cross_validate", "summarise"]

PAPER = (
    "Nicolaes et al., detection of vertebral fractures in CT with a dual-pathway 3D CNN voxel classifier, "
    "CSI 2019 proceedings, paper 1"
)
VARIANTS = ("3d", "1slice", "5slices")
CLASSES = ("background", "normal", "fracture")
IGNORE = -100  # label of padding voxels outside the volume
VALIDATION_BATCHES = 4


@dataclass(frozen=True)
class Config:
    variant: str = "3d"
    #: output channels of the eight convolutions of each pathway (3D variant; the 2D variants are widened to match)
    widths: tuple[int, ...] = (18, 18, 24, 24, 24, 24, 28, 28)
    fc_width: int = 100
    subsample: int = 3
    spacing_mm: float = 1.0
    # label images (Sect. 3.1): ellipsoid semi-axes (superior-inferior, anterior-posterior, left-right) as
    # fractions of the median neighbouring-centroid distance; fractured vertebrae are flattened along SI
    ellipsoid_fractions: tuple[float, float, float] = (0.35, 0.45, 0.5)
    fracture_flattening: float = 0.6
    default_centroid_distance_mm: float = 30.0
    # training (Sect. 3.2)
    segment_output: int = 9  # output side of a training segment (a multiple of subsample)
    batch_size: int = 10
    segments_per_epoch: int = 1000
    epochs: int = 35
    learning_rate: float = 1e-3
    l1: float = 1e-6
    l2: float = 1e-4
    sample_weights: tuple[float, float, float] = (0.4, 0.3, 0.3)  # background, normal, fracture
    #: "voxel": plain voxel-wise cross-entropy (the paper); "class": the mean over the classes present in the batch
    #: of each class's mean cross-entropy, so that the few fracture voxels of a coarse segment count as much as the
    #: background around them
    loss_balance: str = "voxel"
    noise_std: float = 0.1
    #: array axes (z, y, x) along which training segments are randomly flipped (the paper flips along all three)
    flip_axes: tuple[int, ...] = (0, 1, 2)
    validation_fraction: float = 0.15
    plateau_patience: int = 3
    plateau_factor: float = 0.5
    # inference and aggregation (Sect. 3.3)
    tile_output: int = 36
    probability_thresholds: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))
    noise_thresholds: tuple[int, ...] = (1, 10, 25, 50, 100, 200, 400, 800, 1600, 3200)
    noise_threshold: int = 50
    cube_mm: float = 10.0
    cube_sigma_mm: float = 4.0
    # evaluation (Sect. 4)
    centroid_noise_mm: float = 3.0
    folds: int = 5
    min_negatives_per_fold: int = 2
    n_bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.loss_balance not in ("voxel", "class"):
            raise ValueError(f"loss_balance must be 'voxel' or 'class', got {self.loss_balance!r}")
        if not set(self.flip_axes) <= {0, 1, 2}:
            raise ValueError(f"flip_axes must be array axes 0, 1 or 2, got {self.flip_axes!r}")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {self.variant!r}")
        if len(self.widths) != 8:
            raise ValueError(f"widths must list the eight convolution widths, got {len(self.widths)}")
        for name in ("segment_output", "tile_output"):
            if getattr(self, name) % self.subsample:
                raise ValueError(f"{name} must be a multiple of subsample={self.subsample}")


PRESETS = {
    "tiny": Config(widths=(4, 4, 6, 6, 6, 6, 8, 8), fc_width=16, spacing_mm=4.0, segment_output=9, batch_size=4,
                   segments_per_epoch=24, epochs=3, tile_output=60, noise_threshold=10, folds=2,
                   min_negatives_per_fold=1, n_bootstrap=50, learning_rate=3e-3),
    "standard": Config(widths=(6, 6, 8, 8, 8, 8, 12, 12), fc_width=32, spacing_mm=3.0, segment_output=6,
                       batch_size=12, segments_per_epoch=240, epochs=14, tile_output=48,
                       sample_weights=(0.2, 0.4, 0.4), loss_balance="class", flip_axes=(2,), learning_rate=5e-4,
                       noise_thresholds=(1, 5, 10, 25, 50, 100, 200, 400, 800), noise_threshold=10),
    "paper": Config(),
}


# --------------------------------------------------------------------------------------------------- network
def kernel_shapes(variant: str) -> list[tuple[int, int, int]]:
    """Kernel (z, y, x) of the eight convolutions (Table 1); x is left-right, so (3, 3, 1) stays in one sagittal
    slice."""
    sagittal = (3, 3, 1)
    first = {"3d": (3, 3, 3), "1slice": sagittal, "5slices": (3, 3, 5)}[variant]
    rest = (3, 3, 3) if variant == "3d" else sagittal
    return [first] + [rest] * 7


class DualPathwayNet(nn.Module):
    """Normal pathway on the full-resolution centre of the segment, subsampled pathway on the whole segment
    average-pooled by `subsample`; outputs are concatenated and classified voxel-wise by 1x1x1 layers.

    Input side per axis = output side + 2 * margin, with margin = subsample * (receptive field - 1) / 2."""

    def __init__(self, *, kernels, widths, fc_width: int, subsample: int, classes: int = len(CLASSES)):
        super().__init__()
        self.kernels, self.subsample = [tuple(k) for k in kernels], subsample
        self.half_field = np.sum([(np.asarray(k) - 1) // 2 for k in self.kernels], axis=0)  # per axis (z, y, x)
        self.normal = self._pathway(widths)
        self.subsampled = self._pathway(widths)
        self.head = nn.Sequential(
            ConvNormAct3d(2 * widths[-1], fc_width, kernel_size=1, padding=0),
            ConvNormAct3d(fc_width, fc_width, kernel_size=1, padding=0),
            nn.Conv3d(fc_width, classes, kernel_size=1),
        )

    def _pathway(self, widths) -> nn.Sequential:
        channels = [1, *widths]
        return nn.Sequential(
            *(ConvNormAct3d(channels[i], channels[i + 1], kernel_size=kernel, padding=0)
              for i, kernel in enumerate(self.kernels))
        )

    @property
    def receptive_field(self) -> tuple[np.ndarray, np.ndarray]:
        """(normal, subsampled) receptive field per axis (z, y, x) in input voxels."""
        normal = 2 * self.half_field + 1
        return normal, self.subsample * normal

    @property
    def margin(self) -> np.ndarray:
        return self.subsample * self.half_field

    def forward(self, segment: torch.Tensor) -> torch.Tensor:
        inner = self.margin - self.half_field
        stops = np.asarray(segment.shape[2:]) - inner
        centre = segment[:, :, inner[0]:stops[0], inner[1]:stops[1], inner[2]:stops[2]]
        normal = self.normal(centre)
        coarse = self.subsampled(F.avg_pool3d(segment, self.subsample))
        for axis in (2, 3, 4):
            coarse = coarse.repeat_interleave(self.subsample, dim=axis)
        return self.head(torch.cat([normal, coarse], dim=1))


def count_parameters(model: nn.Module) -> int:
    return sum(parameter.numel() for parameter in model.parameters())


def _build(variant: str, widths: tuple[int, ...], fc_width: int, subsample: int) -> DualPathwayNet:
    return DualPathwayNet(kernels=kernel_shapes(variant), widths=widths, fc_width=fc_width, subsample=subsample)


@lru_cache(maxsize=32)
def variant_widths(variant: str, widths: tuple[int, ...], fc_width: int, subsample: int) -> tuple[int, ...]:
    """Convolution widths giving `variant` the parameter count of the 3D model with `widths` (Table 1: the models
    were calibrated to the same number of parameters). The 2D kernels hold fewer weights, so every width is scaled
    by one factor, found by bisection (the count grows with the factor), whose model comes closest to the 3D count."""
    if variant == "3d":
        return widths

    def scaled(factor: float) -> tuple[int, ...]:
        return tuple(max(1, round(w * factor)) for w in widths)

    def count(factor: float) -> int:
        return count_parameters(_build(variant, scaled(factor), fc_width, subsample))

    target = count_parameters(_build("3d", widths, fc_width, subsample))
    low, high = 1.0, 4.0
    for _ in range(14):
        middle = (low + high) / 2
        low, high = (middle, high) if count(middle) < target else (low, middle)
    return min((scaled(low), scaled(high)),
               key=lambda c: abs(count_parameters(_build(variant, c, fc_width, subsample)) - target))


def build_model(config: Config) -> DualPathwayNet:
    widths = variant_widths(config.variant, tuple(config.widths), config.fc_width, config.subsample)
    return _build(config.variant, widths, config.fc_width, config.subsample)


# ------------------------------------------------------------------------------------------------------ data
@dataclass
class Prepared:
    """A case at `spacing_mm`: the standardised volume, centroids as array indices (z, y, x), the reference image."""

    id: str
    volume: np.ndarray
    centroids: dict[str, np.ndarray]
    reference: sitk.Image
    labels: np.ndarray | None = None
    class_voxels: list[np.ndarray] = field(default_factory=list)


def prepare(case: FractureCase, config: Config) -> Prepared:
    """Resample to `spacing_mm` (1 mm in the paper) and standardise (Sect. 3)."""
    background = float(sitk.GetArrayViewFromImage(case.image).min())
    image = resample(case.image, spacing=config.spacing_mm, default=background)
    centroids = {name: physical_to_index(image, point) for name, point in case.centroids.items()}
    return Prepared(id=case.id, volume=standardise(sitk.GetArrayFromImage(image)), centroids=centroids,
                    reference=image)


def label_image(shape, centroids: dict[str, np.ndarray], fractured: dict[str, bool], *, spacing_mm: float,
                config: Config) -> np.ndarray:
    """Sect. 3.1: 0 background, 1 normal, 2 fracture; an ellipsoid around every centroid (z, y, x indices)."""
    labels = np.zeros(shape, np.uint8)
    points = np.array([centroids[name] for name in centroids])
    order = np.argsort(points[:, 0])
    gaps = np.linalg.norm(np.diff(points[order], axis=0), axis=1) * spacing_mm
    distance = float(np.median(gaps)) if len(gaps) else config.default_centroid_distance_mm
    for name, centre in centroids.items():
        semi_axes = np.asarray(config.ellipsoid_fractions) * distance / spacing_mm
        if fractured.get(name, False):
            semi_axes[0] *= config.fracture_flattening
        box = tuple(
            slice(max(0, int(np.floor(c - a))), min(n, int(np.ceil(c + a)) + 1))
            for c, a, n in zip(centre, semi_axes, shape)
        )
        coordinates = np.ogrid[box]  # index grids of the box only, broadcast against each other
        local = sum(((coordinates[axis] - centre[axis]) / semi_axes[axis]) ** 2 for axis in range(3))
        region = labels[box]
        region[local <= 1.0] = 2 if fractured.get(name, False) else 1
    return labels


def _pad(array: np.ndarray, margin, value) -> np.ndarray:
    return np.pad(array, [(int(m), int(m)) for m in margin], constant_values=value)


class SegmentSampler:
    """Weighted segment sampling (Sect. 3.2): pick a class with `sample_weights` (renormalised over the classes a
    case has), a voxel of that class as the segment centre, then add intensity noise and random flips."""

    def __init__(self, cases: list[Prepared], *, margin, config: Config, rng: np.random.Generator):
        self.cases, self.margin, self.config, self.rng = cases, np.asarray(margin), config, rng
        # padding by margin + segment output keeps every segment centred on any volume voxel inside the array
        self.pad = self.margin + config.segment_output
        self.padded = [
            (_pad(c.volume, self.pad, c.volume.min()), _pad(c.labels.astype(np.int64), self.pad, IGNORE))
            for c in cases
        ]

    def segment(self, index: int, *, augment: bool) -> tuple[np.ndarray, np.ndarray]:
        case, (volume, labels) = self.cases[index], self.padded[index]
        weights = np.array([w if len(v) else 0.0 for w, v in zip(self.config.sample_weights, case.class_voxels)])
        cls = self.rng.choice(len(weights), p=weights / weights.sum())
        flat = case.class_voxels[cls][self.rng.integers(len(case.class_voxels[cls]))]
        out = self.config.segment_output
        start = np.asarray(np.unravel_index(flat, case.volume.shape)) - out // 2 + self.pad  # output start, padded
        image = volume[tuple(slice(s - m, s + out + m) for s, m in zip(start, self.margin))]
        target = labels[tuple(slice(s, s + out) for s in start)]
        if augment:
            image = image + self.rng.normal(0.0, self.config.noise_std, image.shape).astype(np.float32)
            flips = tuple(axis for axis in range(3) if self.rng.random() < 0.5 and axis in self.config.flip_axes)
            image, target = np.flip(image, flips), np.flip(target, flips)
        return np.ascontiguousarray(image), np.ascontiguousarray(target)

    def batch(self, size: int, *, augment: bool) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [self.segment(int(self.rng.integers(len(self.cases))), augment=augment) for _ in range(size)]
        images = torch.from_numpy(np.stack([p[0] for p in pairs])[:, None])
        return images, torch.from_numpy(np.stack([p[1] for p in pairs]))


def _training_cases(data_dir, ids, config: Config) -> list[Prepared]:
    grades = read_grades(data_dir)
    prepared = []
    for case_id in ids:
        case = prepare(read_case(data_dir, case_id), config)
        if case_id not in grades:
            raise ValueError(f"{data_dir}: ground_truth/vertebrae.csv has no row for case {case_id!r}")
        fractured = {name: grade >= 1 for name, grade in grades[case_id].items()}
        case.labels = label_image(case.volume.shape, case.centroids, fractured, spacing_mm=config.spacing_mm,
                                  config=config)
        case.class_voxels = [np.flatnonzero(case.labels == cls) for cls in range(len(CLASSES))]
        prepared.append(case)
    return prepared


# -------------------------------------------------------------------------------------------------- training
def segment_loss(logits: torch.Tensor, targets: torch.Tensor, config: Config) -> torch.Tensor:
    """Voxel-wise cross-entropy (padding voxels ignored), optionally balanced over classes (``loss_balance``)."""
    if config.loss_balance == "voxel":
        return F.cross_entropy(logits, targets, ignore_index=IGNORE)
    voxels = F.cross_entropy(logits, targets, ignore_index=IGNORE, reduction="none")
    means = [voxels[targets == cls].mean() for cls in range(len(CLASSES)) if bool((targets == cls).any())]
    return torch.stack(means).mean() if means else voxels.sum() * 0.0


def _regularisation(model: nn.Module, config: Config) -> torch.Tensor:
    weights = [p for name, p in model.named_parameters() if name.endswith("weight") and p.dim() == 5]
    return config.l1 * sum(w.abs().sum() for w in weights) + config.l2 * sum(w.pow(2).sum() for w in weights)


def fit(cases: list[Prepared], config: Config, *, device="cpu", progress: bool = True) -> dict:
    """Train on prepared cases (labels set); returns the checkpoint dict."""
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    model = build_model(config).to(device)
    n_val = int(round(config.validation_fraction * len(cases))) if len(cases) >= 4 else 0
    order = rng.permutation(len(cases))
    train_cases = [cases[i] for i in order[n_val:]]
    val_cases = [cases[i] for i in order[:n_val]]
    sampler = SegmentSampler(train_cases, margin=model.margin, config=config, rng=rng)
    val_batches = []
    if val_cases:  # a fixed validation set of segments, so the plateau criterion compares like with like
        val_sampler = SegmentSampler(val_cases, margin=model.margin, config=config,
                                     rng=np.random.default_rng(config.seed + 1))
        val_batches = [val_sampler.batch(config.batch_size, augment=False) for _ in range(VALIDATION_BATCHES)]
    optimiser = torch.optim.RMSprop(model.parameters(), lr=config.learning_rate)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=config.plateau_factor,
                                                           patience=config.plateau_patience)
    use_amp = device.type == "cuda"
    steps = max(1, config.segments_per_epoch // config.batch_size)
    losses, val_losses, best = [], [], (np.inf, None)
    for _epoch in tqdm(range(config.epochs), desc=f"dual-pathway {config.variant}", disable=not progress):
        model.train()
        total = 0.0
        for _ in range(steps):
            images, targets = sampler.batch(config.batch_size, augment=True)
            with torch.autocast(device.type, enabled=use_amp):
                logits = model(images.to(device))
                loss = segment_loss(logits.float(), targets.to(device), config)
            loss = loss + _regularisation(model, config)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += float(loss.detach())
        losses.append(total / steps)
        monitored = losses[-1]
        if val_batches:
            model.eval()
            with torch.no_grad():
                monitored = float(np.mean([
                    segment_loss(model(images.to(device)).float(), targets.to(device), config)
                    for images, targets in val_batches
                ]))
            val_losses.append(monitored)
        scheduler.step(monitored)
        if monitored < best[0]:
            best = (monitored, {k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    return {"state": best[1], "losses": losses, "val_losses": val_losses, "config": asdict(config),
            "parameters": count_parameters(model)}


def train(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Train on every case of a fracture-ct training dataset (reads inputs and ground_truth/vertebrae.csv)."""
    return fit(_training_cases(data_dir, case_ids(data_dir), config), config, device=device, progress=progress)


def load_model(checkpoint: dict, config: Config, device) -> DualPathwayNet:
    model = build_model(config)
    model.load_state_dict(checkpoint["state"])
    return model.to(device).eval()


# ------------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def probability_map(model: DualPathwayNet, volume: np.ndarray, *, tile: int, device) -> np.ndarray:
    """Grid inference: (3, z, y, x) class probabilities of the whole volume, tile by tile."""
    device = torch.device(device)
    margin = model.margin
    shape = np.asarray(volume.shape)
    tiles = np.ceil(shape / tile).astype(int)
    extra = tiles * tile - shape
    padded = np.pad(volume, [(int(m), int(m + e)) for m, e in zip(margin, extra)], constant_values=volume.min())
    out = np.zeros((len(CLASSES), *(tiles * tile)), np.float32)
    for index in np.ndindex(*tiles):
        start = np.asarray(index) * tile
        segment = padded[tuple(slice(s, s + tile + 2 * m) for s, m in zip(start, margin))]
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            logits = model(torch.from_numpy(np.ascontiguousarray(segment))[None, None].to(device))
        out[(slice(None), *(slice(s, s + tile) for s in start))] = torch.softmax(logits.float(), 1)[0].cpu().numpy()
    return out[(slice(None), *(slice(0, n) for n in shape))]


def largest_components(fracture: np.ndarray, thresholds) -> np.ndarray:
    """Size in voxels of the largest 26-connected component of {fracture > t}, for each probability threshold t."""
    structure = np.ones((3, 3, 3), bool)
    sizes = []
    for threshold in thresholds:
        components, count = ndimage.label(fracture > threshold, structure=structure)
        sizes.append(int(np.bincount(components.ravel())[1:].max()) if count else 0)
    return np.asarray(sizes)


def patient_score(sizes: np.ndarray, config: Config) -> float:
    """The highest probability threshold at which a component of at least `noise_threshold` voxels survives (0 when
    none does): thresholding this score reproduces the (probability, noise) classifiers at that noise threshold."""
    surviving = np.asarray(config.probability_thresholds)[sizes >= config.noise_threshold]
    return float(surviving.max()) if len(surviving) else 0.0


def vertebra_scores(fracture: np.ndarray, centroids: dict[str, np.ndarray], *, config: Config,
                    noise_mm: float = 0.0, rng: np.random.Generator | None = None) -> dict[str, float]:
    """Sect. 3.3: Gaussian-weighted mean fracture probability in a cube of side `cube_mm` around each centroid
    (z, y, x indices at `spacing_mm`), the centroid first moved by N(0, noise_mm) per axis when noise_mm > 0."""
    half = config.cube_mm / config.spacing_mm / 2
    sigma = config.cube_sigma_mm / config.spacing_mm
    scores = {}
    for name, centre in centroids.items():
        if noise_mm > 0:
            centre = centre + rng.normal(0.0, noise_mm / config.spacing_mm, 3)
        box = tuple(
            slice(int(np.clip(np.floor(c - half), 0, n - 1)), int(np.clip(np.ceil(c + half), 1, n)))
            for c, n in zip(centre, fracture.shape)
        )
        grid = np.meshgrid(*(np.arange(b.start, b.stop) for b in box), indexing="ij")
        distance2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
        weights = np.exp(-0.5 * distance2 / sigma**2)
        scores[name] = float(np.clip((fracture[box] * weights).sum() / weights.sum(), 0.0, 1.0))
    return scores


def _infer(model, case: Prepared, config: Config, device) -> np.ndarray:
    return probability_map(model, case.volume, tile=config.tile_output, device=device)[CLASSES.index("fracture")]


def predict(*, checkpoint: dict, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Fracture probabilities per vertebra of centroids.json and per patient; reads only inputs/."""
    device = resolve_device(device)
    model = load_model(checkpoint, config, device)
    predictions = {}
    for case_id in tqdm(case_ids(data_dir), desc="dual-pathway predict", disable=not progress):
        case = prepare(read_case(data_dir, case_id), config)
        fracture = _infer(model, case, config, device)
        sizes = largest_components(fracture, config.probability_thresholds)
        predictions[case_id] = {"vertebrae": vertebra_scores(fracture, case.centroids, config=config),
                                "patient": patient_score(sizes, config)}
    return predictions


# ------------------------------------------------------------------------------------------------ evaluation
def cross_validate(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Sect. 4: stratified k-fold cross-validation over patients (at least `min_negatives_per_fold` negative
    patients per fold). Per patient it keeps the largest-component sizes per probability threshold (for the
    patient-level hull), the patient score and the noisy-centroid vertebra scores."""
    ids = case_ids(data_dir)
    grades = read_grades(data_dir)
    positive = [patient_fractured(grades.get(case_id, {})) for case_id in ids]
    folds = stratified_folds(positive, n_folds=config.folds, min_negatives=config.min_negatives_per_fold,
                             seed=config.seed)
    cases = _training_cases(data_dir, ids, config)
    rng = np.random.default_rng(config.seed + 7)
    device = resolve_device(device)
    result = {"case_ids": [], "patient_labels": [], "sizes": [], "patient_scores": [], "vertebra_labels": [],
              "vertebra_grades": [], "vertebra_scores": [], "vertebra_clusters": [], "losses": []}
    for fold, test in enumerate(folds):
        held_out = set(test.tolist())
        training = [c for i, c in enumerate(cases) if i not in held_out]
        checkpoint = fit(training, replace(config, seed=config.seed + fold), device=device, progress=progress)
        result["losses"].append(checkpoint["losses"])
        model = load_model(checkpoint, config, device)
        for i in test:
            case = cases[i]
            fracture = _infer(model, case, config, device)
            sizes = largest_components(fracture, config.probability_thresholds)
            scores = vertebra_scores(fracture, case.centroids, config=config, noise_mm=config.centroid_noise_mm,
                                     rng=rng)
            result["case_ids"].append(case.id)
            result["patient_labels"].append(positive[i])
            result["sizes"].append(sizes)
            result["patient_scores"].append(patient_score(sizes, config))
            for name, score in scores.items():
                grade = grades[case.id].get(name)
                if grade is None:
                    continue
                result["vertebra_labels"].append(grade >= 1)
                result["vertebra_grades"].append(grade)
                result["vertebra_scores"].append(score)
                result["vertebra_clusters"].append(case.id)
    return result


def hull_auc(labels, sizes, config: Config) -> float:
    """Area under the ROC convex hull of the (probability threshold, noise threshold) classifiers (Sect. 4)."""
    from evaluators import metrics

    labels = np.asarray(labels, bool)
    noise = np.asarray(config.noise_thresholds)
    positive = np.asarray(sizes)[:, :, None] >= noise[None, None, :]  # patient x probability x noise
    tpr = positive[labels].mean(axis=0).ravel()
    fpr = positive[~labels].mean(axis=0).ravel()
    hull = metrics.roc_convex_hull(np.column_stack([fpr, tpr]))
    return float(np.trapezoid(hull[:, 1], hull[:, 0]))


def summarise(result: dict, config: Config) -> dict:
    """Patient-level hull AUC with a stratified bootstrap (std and 95% interval), the AUC of the single patient
    score that `predict` reports, and the vertebra-level AUC with a patient-clustered bootstrap interval (both
    (auc, lower, upper) from evaluators.metrics.roc_auc_ci)."""
    from evaluators import metrics

    labels = np.asarray(result["patient_labels"], bool)
    sizes = np.asarray(result["sizes"])
    rng = np.random.default_rng(config.seed)
    positives, negatives = np.flatnonzero(labels), np.flatnonzero(~labels)
    replicates = []
    for _ in range(config.n_bootstrap):
        sample = np.concatenate([rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))])
        replicates.append(hull_auc(labels[sample], sizes[sample], config))
    vertebra = metrics.roc_auc_ci(np.asarray(result["vertebra_labels"], int), np.asarray(result["vertebra_scores"]),
                                  n_bootstrap=config.n_bootstrap, seed=config.seed,
                                  clusters=np.asarray(result["vertebra_clusters"]))
    return {
        "patient_auc": hull_auc(labels, sizes, config),
        "patient_auc_std": float(np.std(replicates)),
        "patient_auc_ci": tuple(np.percentile(replicates, [2.5, 97.5])),
        "patient_score_auc": metrics.roc_auc_ci(labels.astype(int), np.asarray(result["patient_scores"]),
                                                n_bootstrap=config.n_bootstrap, seed=config.seed),
        "vertebra_auc": vertebra,
    }
