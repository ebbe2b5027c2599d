"""Lumbosacral bone / disc / nerve segmentation on CT: supervised 3D U-Net, semi-cGAN and fewshot-GAN.

Follows Liu et al., "Semi-supervised Semantic Segmentation of Multiple Lumbosacral Structures on CT" (CSI 2019):

- Sect. 2.2 preprocessing: volumes resampled to 1 × 0.5 × 0.5 mm (z, y, x; linear for the image, nearest for the
  labels), 32×64×64 patches, standardisation with a mean and standard deviation computed once on the training set
  and reused for every later volume; augmentation by white noise, vertical/horizontal flips, a ±0.2 mm voxel-size
  disturbance and ±10° rotation about the longitudinal axis (``baselines.lumbosacral.patches``).
- Sect. 2.3 networks, chosen by ``Config.method``:
  ``unet`` — a supervised 3D U-Net (``baselines.nn.unet3d.UNet3D``) trained on the labelled cases only;
  ``semi-cgan`` — the U-Net is the generator G(x) of a 4-class segmentation; the discriminator
  (``networks.PairDiscriminator``, a 3D CNN ending in two fully-connected layers) scores image–segmentation pairs;
  ``fewshot-gan`` — a volume generator from noise (``networks.VolumeGenerator``) and a discriminator that is a
  modified 3D U-Net (leaky ReLU, weight normalisation instead of batch norm, average pooling instead of max
  pooling) with K = 4 class logits; "fake" is the implicit extra class with probability 1 / (1 + Σ_k exp a_k).
- Sect. 2.5 losses: fewshot-GAN — D: L_fake + L_unlabelled + λ_D · weighted cross-entropy on labelled voxels,
  G: feature matching (squared distance between the mean bottleneck features of real labelled patches and of
  generated patches); semi-cGAN — G: adversarial terms on labelled and unlabelled patches + λ_G · weighted
  cross-entropy, D: λ_D · fake(labelled) + fake(unlabelled) + real(ground-truth pairs). Adam for both.
  Class weights are median-frequency balancing over the labelled training voxels ("different classes have unique
  values" in the paper), raised to ``class_weight_power`` (1 in ``paper``; the paper gives no values). The
  supervised U-Net uses the same weighted cross-entropy. The paper gives no values for λ_G and λ_D either; λ_D of
  the fewshot-GAN (``lambda_d``, Eq. 2) and of the semi-cGAN (``lambda_d_cgan``, Eq. 10) are separate settings.
- Sect. 2.6 inference: a 32×64×64 window every (20, 40, 40) voxels, averaging overlapping class probabilities,
  then the arg-max is resampled (nearest) back onto the input's own grid.

Where it differs: generated phantoms instead of the hospital and SpineWeb cases (the "cross-dataset" test group is
a differently generated set); no pretrained weights; ``tiny``/``standard`` use smaller patches, strides, networks
and iteration counts for the CPU, and resample to 4 × 2 × 2 mm (the paper's 2:1 anisotropy at four times the
voxel size, with the ±0.2 mm disturbance scaled to ±0.8 mm), matching SpineBench's small phantoms; the paper's
generator loss for unlabelled data (its Eq. 8) is printed with the sign that would make the generator help the
discriminator — we use the usual sign (the generator wants its
unlabelled segmentations judged real too); the per-voxel sums of the paper are means here (a constant scale);
the ``standard`` preset uses the square root of the median-frequency weights (``class_weight_power=0.5``): the full
weights give the nerve about 200 times the background's weight on the phantoms, which after a CPU-length training
moves the weighted arg-max so far towards the rare classes that disc and nerve are predicted in scattered islands
over much of the volume (Dice under 30 % and surface distances of about 10 voxels for both); it also sets
λ_G = λ_D = 10 (``lambda_g``, ``lambda_d``) so that the labelled cross-entropy is not swamped by the adversarial
terms in so few iterations (with 1 the semi-cGAN's nerve and the fewshot-GAN's cross-dataset disc were barely
found); and, beyond the paper's augmentation, a random intensity offset (±0.3 standard deviations, about ±40 HU)
and contrast factor (1 ± 0.1) per patch — the other scanner's HU offset otherwise moved the fewshot-GAN's
discriminator (weight normalisation, so no per-patch intensity normalisation) off the discs in the cross-dataset
group (disc Dice 64 % instead of 83 % on validation phantoms); the instance-normalised U-Nets are nearly invariant to
it. ``losses`` in the checkpoint is the supervised (labelled cross-entropy) term of each iteration, the part that
must fall for every method, with the adversarial terms kept in ``d_losses``/``g_losses``. Unlabelled volumes are
the training cases without ground truth, the cases beyond ``labelled_cases``, and (when there are none) the
labelled volumes' images again without their labels. The ``paper`` preset reproduces the paper's split: the first
20 training cases are labelled and the rest (54 in the paper) are truly unlabelled, so the GANs see unlabelled
volumes and the 3D U-Net, which trains on labelled patches only, sees 20 labelled volumes; ``tiny`` and ``standard``
label every case (``labelled_cases=None``; set it to compare the settings on CPU).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from tqdm import tqdm

from baselines.lumbosacral.networks import PairDiscriminator, VolumeGenerator
from baselines.lumbosacral.patches import Augmentation, augmented_patch
from baselines.nn.training import GradScalerStep, autocast, resolve_device, seed_everything
from baselines.nn.unet3d import UNet3D
from baselines.nn.volumes import (
    case_ids,
    input_image,
    resample_to_spacing,
    sliding_window_probabilities,
)
from evaluators.layout import GROUND_TRUTH

TASK = "lumbosacral-ct"
PAPER = "Liu et al., semi-supervised segmentation of lumbosacral bone, disc and nerve on CT (CSI 2019)"
METHODS = ("unet", "semi-cgan", "fewshot-gan")
CLASSES = 4  # background, bone, disc, nerve


@dataclass(frozen=True)
class Config:
    method: str = "unet"
    spacing: tuple[float, float, float] = (1.0, 0.5, 0.5)  # (z, y, x) mm
    patch: tuple[int, int, int] = (32, 64, 64)
    stride: tuple[int, int, int] = (20, 40, 40)
    levels: int = 4
    base_filters: int = 16
    norm: str = "batch"
    iterations: int = 100_000
    batch_size: int = 4  # labelled and unlabelled patches per iteration each
    learning_rate: float = 2e-4
    labelled_cases: int | None = None  # None: every case with ground truth is labelled
    lambda_g: float = 1.0  # semi-cGAN: weight of the labelled cross-entropy in the generator loss
    lambda_d: float = 1.0  # fewshot-GAN: weight λ_D of the labelled cross-entropy in the discriminator loss (Eq. 2)
    lambda_d_cgan: float = 1.0  # semi-cGAN: weight λ_D of the fake(labelled) term in the discriminator loss (Eq. 10)
    latent_dim: int = 200
    generator_filters: int = 32
    generator_levels: int = 4
    discriminator_filters: int = 16
    discriminator_levels: int = 4
    foreground_probability: float = 0.5
    class_weight_power: float = 1.0  # median-frequency weights raised to this power (0: unweighted)
    noise_std: float = 0.05
    intensity_shift: float = 0.0  # beyond the paper: ± offset of the standardised intensity (patches.Augmentation)
    intensity_scale: float = 0.0  # beyond the paper: contrast factor 1 ± this
    flip_probability: float = 0.5
    voxel_jitter_mm: float = 0.2
    rotation_degrees: float = 10.0
    seed: int = 0

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")


PRESETS = {
    "tiny": Config(spacing=(4.0, 2.0, 2.0), voxel_jitter_mm=0.8, patch=(16, 24, 24), stride=(10, 15, 15),
                   levels=2, base_filters=4, norm="instance", iterations=16, batch_size=2, learning_rate=3e-3,
                   latent_dim=16, generator_filters=4, generator_levels=3, discriminator_filters=4,
                   discriminator_levels=2),
    # standard: 1 800 iterations take about 2 (U-Net), 7 (semi-cGAN) and 9 (fewshot-GAN) minutes of CPU time on one
    # thread (4, 10 and 12 minutes of wall time, with prediction, in the benchmark on a busy 2-core machine)
    "standard": Config(spacing=(4.0, 2.0, 2.0), voxel_jitter_mm=0.8, patch=(16, 32, 32), stride=(10, 20, 20),
                       levels=3, base_filters=8, norm="instance", iterations=1800, batch_size=2, learning_rate=2e-3,
                       class_weight_power=0.5, lambda_g=10.0, lambda_d=10.0, intensity_shift=0.3,
                       intensity_scale=0.1, latent_dim=32, generator_filters=8,
                       generator_levels=3, discriminator_filters=8, discriminator_levels=3),
    "paper": Config(labelled_cases=20),
}


def _spacing_xyz(config: Config) -> tuple[float, float, float]:
    return tuple(reversed(config.spacing))


def segmenter(config: Config) -> UNet3D:
    """The network whose arg-max is the segmentation: the U-Net, the cGAN generator, or the fewshot
    discriminator."""
    if config.method == "fewshot-gan":
        return UNet3D(1, CLASSES, base_filters=config.base_filters, levels=config.levels, norm="weight",
                      act="leaky", pool="avg")
    return UNet3D(1, CLASSES, base_filters=config.base_filters, levels=config.levels, norm=config.norm)


def class_weights(label_volumes: list[np.ndarray], power: float = 1.0) -> torch.Tensor:
    """Median-frequency balancing: w_c = (median_k(f_k) / f_c) ** power, f_c the voxel frequency of class c (absent
    classes get the largest present weight)."""
    counts = np.bincount(np.concatenate([v.ravel() for v in label_volumes]), minlength=CLASSES)[:CLASSES]
    frequency = counts / counts.sum()
    present = frequency > 0
    weights = np.zeros(CLASSES)
    weights[present] = np.median(frequency[present]) / frequency[present]
    weights[~present] = weights[present].max()
    weights = weights**power
    return torch.tensor(weights, dtype=torch.float32)


def _load(data_dir, config: Config):
    """Resampled training volumes: list of (image array, label array or None)."""
    data_dir = Path(data_dir)
    volumes, labelled = [], 0
    for case_id in case_ids(data_dir):
        image = resample_to_spacing(input_image(data_dir, case_id), _spacing_xyz(config), labels=False)
        truth_path = data_dir / GROUND_TRUTH / f"{case_id}.nii.gz"
        labels = None
        use_labels = config.labelled_cases is None or labelled < config.labelled_cases
        if truth_path.is_file() and use_labels:
            truth = sitk.ReadImage(str(truth_path))
            labels = sitk.GetArrayFromImage(sitk.Resample(truth, image, sitk.Transform(), sitk.sitkNearestNeighbor))
            if labels.max() >= CLASSES:
                raise ValueError(f"{truth_path}: labels must be 0-3 (background, bone, disc, nerve), found "
                                 f"{int(labels.max())}")
            labels = labels.astype(np.int64)
            labelled += 1
        volumes.append((sitk.GetArrayFromImage(image).astype(np.float32), labels))
    if not labelled:
        raise ValueError(f"{data_dir}: no training case has a ground-truth label map")
    return volumes


def _fake_loss(logits: torch.Tensor) -> torch.Tensor:
    """−log p(fake) = log(1 + Σ_k exp a_k) per voxel, averaged."""
    return F.softplus(torch.logsumexp(logits, dim=1)).mean()


def _real_loss(logits: torch.Tensor) -> torch.Tensor:
    """−log(1 − p(fake)) = log(1 + exp(−logsumexp_k a_k)) per voxel, averaged."""
    return F.softplus(-torch.logsumexp(logits, dim=1)).mean()


def train(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    device = resolve_device(device)
    rng = seed_everything(config.seed)
    volumes = _load(data_dir, config)
    all_voxels = np.concatenate([image.ravel() for image, _ in volumes])
    mean, std = float(all_voxels.mean()), float(all_voxels.std() or 1.0)
    volumes = [((image - mean) / std, labels) for image, labels in volumes]
    labelled = [v for v in volumes if v[1] is not None]
    unlabelled = [(image, None) for image, labels in volumes if labels is None] or [(i, None) for i, _ in labelled]
    weights = class_weights([labels for _, labels in labelled], config.class_weight_power).to(device)
    augmentation = Augmentation(noise_std=config.noise_std, flip_probability=config.flip_probability,
                                voxel_jitter_mm=config.voxel_jitter_mm, rotation_degrees=config.rotation_degrees,
                                spacing=config.spacing, intensity_shift=config.intensity_shift,
                                intensity_scale=config.intensity_scale)

    def batch(pool, with_labels: bool):
        images, labels = [], []
        for _ in range(config.batch_size):
            image, label = pool[rng.integers(len(pool))]
            x, y = augmented_patch(image, label if with_labels else None, patch=config.patch,
                                   augmentation=augmentation, foreground_probability=config.foreground_probability,
                                   rng=rng)
            images.append(x)
            labels.append(y)
        return torch.cat(images).to(device), (torch.cat(labels).to(device) if with_labels else None)

    net = segmenter(config).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate, betas=(0.5, 0.999))
    other = None
    if config.method == "semi-cgan":
        other = PairDiscriminator(in_channels=1 + CLASSES, base_filters=config.discriminator_filters,
                                  levels=config.discriminator_levels).to(device)
    elif config.method == "fewshot-gan":
        other = VolumeGenerator(latent_dim=config.latent_dim, patch=config.patch,
                                base_filters=config.generator_filters, levels=config.generator_levels).to(device)
    other_optimiser = (torch.optim.Adam(other.parameters(), lr=config.learning_rate, betas=(0.5, 0.999))
                       if other is not None else None)
    stepper = GradScalerStep(device)
    losses, d_losses, g_losses = [], [], []
    for _ in tqdm(range(config.iterations), desc=config.method, disable=not progress):
        x_l, y_l = batch(labelled, True)
        net.train()
        if config.method == "unet":
            with autocast(device):
                logits = net(x_l)
            loss = F.cross_entropy(logits.float(), y_l, weight=weights)
            stepper.step(loss, optimiser)
            losses.append(loss.item())
            continue
        x_u, _ = batch(unlabelled, False)
        if config.method == "semi-cgan":
            supervised, d_loss, g_loss = _semi_cgan_step(net, other, optimiser, other_optimiser, x_l, y_l, x_u,
                                                         weights=weights, config=config)
        else:
            supervised, d_loss, g_loss = _fewshot_step(net, other, optimiser, other_optimiser, x_l, y_l, x_u,
                                                       weights=weights, config=config)
        losses.append(supervised)
        d_losses.append(d_loss)
        g_losses.append(g_loss)
    return {
        "state": {k: v.cpu() for k, v in net.state_dict().items()},
        "losses": losses,
        "d_losses": d_losses,
        "g_losses": g_losses,
        "standardisation": {"mean": mean, "std": std},
        "class_weights": weights.cpu().tolist(),
        "config": asdict(config),
    }


def _semi_cgan_step(generator, discriminator, g_opt, d_opt, x_l, y_l, x_u, *, weights, config):
    bce = F.binary_cross_entropy_with_logits
    real_pairs = F.one_hot(y_l, CLASSES).permute(0, 4, 1, 2, 3).float()
    # discriminator: real (image, ground truth) pairs vs (image, G(image)) pairs, labelled and unlabelled
    with torch.no_grad():
        fake_l = torch.softmax(generator(x_l), dim=1)
        fake_u = torch.softmax(generator(x_u), dim=1)
    d_opt.zero_grad()
    d_real = discriminator(x_l, real_pairs)
    d_fake_l = discriminator(x_l, fake_l)
    d_fake_u = discriminator(x_u, fake_u)
    d_loss = (config.lambda_d_cgan * bce(d_fake_l, torch.zeros_like(d_fake_l))
              + bce(d_fake_u, torch.zeros_like(d_fake_u)) + bce(d_real, torch.ones_like(d_real)))
    d_loss.backward()
    d_opt.step()
    # generator: fool D on labelled and unlabelled patches, and match the labels (weighted cross-entropy)
    g_opt.zero_grad()
    logits_l = generator(x_l)
    logits_u = generator(x_u)
    score_l = discriminator(x_l, torch.softmax(logits_l, dim=1))
    score_u = discriminator(x_u, torch.softmax(logits_u, dim=1))
    supervised = F.cross_entropy(logits_l, y_l, weight=weights)
    g_loss = (bce(score_l, torch.ones_like(score_l)) + bce(score_u, torch.ones_like(score_u))
              + config.lambda_g * supervised)
    g_loss.backward()
    g_opt.step()
    return supervised.item(), d_loss.item(), g_loss.item()


def _fewshot_step(discriminator, generator, d_opt, g_opt, x_l, y_l, x_u, *, weights, config):
    z = torch.randn(x_l.shape[0], config.latent_dim, device=x_l.device)
    # discriminator: K-class segmentation of labelled voxels, "one of the K classes" for unlabelled, "fake" for G(z)
    d_opt.zero_grad()
    fake = generator(z).detach()
    logits_l = discriminator(x_l)
    supervised = F.cross_entropy(logits_l, y_l, weight=weights)
    d_loss = _fake_loss(discriminator(fake)) + _real_loss(discriminator(x_u)) + config.lambda_d * supervised
    d_loss.backward()
    d_opt.step()
    # generator: feature matching on the discriminator's bottleneck features
    g_opt.zero_grad()
    _, real_features = discriminator(x_l, return_features=True)
    _, fake_features = discriminator(generator(z), return_features=True)
    g_loss = (real_features.detach().mean(dim=(0, 2, 3, 4)) - fake_features.mean(dim=(0, 2, 3, 4))).square().sum()
    g_loss.backward()
    g_opt.step()
    return supervised.item(), d_loss.item(), g_loss.item()


def predict(*, checkpoint: dict, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Label map (0 background, 1 bone, 2 disc, 3 nerve) on each input's own grid, by sliding-window inference at
    the training spacing."""
    device = resolve_device(device)
    net = segmenter(config).to(device)
    net.load_state_dict(checkpoint["state"])
    net.eval()
    mean, std = checkpoint["standardisation"]["mean"], checkpoint["standardisation"]["std"]
    predictions = {}
    for case_id in tqdm(case_ids(data_dir), desc="predict", disable=not progress):
        reference = input_image(data_dir, case_id)
        resampled = resample_to_spacing(reference, _spacing_xyz(config), labels=False)
        volume = (sitk.GetArrayFromImage(resampled).astype(np.float32) - mean) / std
        probabilities = sliding_window_probabilities(
            net, torch.from_numpy(volume)[None, None], window=config.patch, stride=config.stride,
            classes=CLASSES, device=device,
        )
        labels = sitk.GetImageFromArray(probabilities.argmax(dim=0).numpy().astype(np.uint8))
        labels.CopyInformation(resampled)
        predictions[case_id] = sitk.Resample(labels, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0,
                                             sitk.sitkUInt8)
    return predictions
