"""Vertebral fracture classification with a conditioned variational auto-encoder, after Husseini et al. (CSI 2019),
and the paper's three comparison models.

Which part follows which section of the paper:

- Data preparation (Sect. 3, "Data preparation"): each vertebra is cut out of the CT with its segmentation mask
  (here ``inputs/vertebrae.nii.gz``) and placed in a 64^3 box at 1.5 mm isotropic spacing centred on its centroid
  (``extract_patches``); intensities are HU / ``hu_scale``.
- Representation learning (Sect. 2, Eq. 1): a weighted mean square error whose weight falls linearly from 1 at the
  anterior edge of the vertebral body to 0 at the posterior end of the process (``body_weights``), so the network
  spends its capacity on the body.
- The VAE (Sect. 2, Fig. 2, Eq. 2): 3D convolutional encoder (convolutions separated by batch norm and ReLU), two
  linear layers for mean and log-variance, reparametrisation, the latent concatenated with a one-hot of the five
  vertebra groups T1-T5, T6-T9, T10-T12, L1-L4, L5 before the decoder (``SpineVAE``). Loss: reconstruction + beta KL,
  with reconstruction-only epochs first and the KL weight annealed up to beta = 0.1 afterwards (Sect. 3, "Datasets
  and training").
- The MLP (Sect. 2, Eq. 3): once the auto-encoder has converged, an MLP on the latent code is trained with a
  cross-entropy weighted by median class frequency, added to the existing loss.
- Augmentation (Sect. 3): random rotations of up to +-30 degrees in the sagittal plane.
- The comparison models (Sect. 3.2, Fig. 3): ``model="vae"`` (no one-hot, plain MSE), ``"autoencoder"``
  (deterministic auto-encoder + classifier, plain MSE) and ``"encoder"`` (encoder + classifier trained with the
  cross-entropy only). Evaluation: patient-grouped 5-fold cross-validation with recall, precision, F1, specificity,
  ROC AUC and recall per Genant grade (``cross_validate``, ``summarise``), and the saliency map of the fracture logit
  with respect to the input patch (``saliency_figure``, Fig. 5).

Where this differs from the paper: no pretrained weights and no unlabelled extra cohort (the unsupervised phases use
every training vertebra); generated phantom data instead of 2700 clinical vertebrae; the ``tiny`` and ``standard``
presets use smaller patches (16^3 / 24^3 at a coarser spacing; ``standard`` keeps the 96 mm box with 24^3 voxels of
4 mm), narrower layers and a few epochs instead of 600, so that they run on a CPU (``paper`` keeps 64^3 at 1.5 mm,
Adam 1e-4, 150 + 450 + 30 epochs); ``tiny`` also uses 2 folds with one negative patient each (``standard`` and
``paper``: 5 folds, at least two negative patients per fold). Vertebrae outside T1-L5 join the nearest of the five
groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from baselines.fracture.common import (
    GROUPS,
    TASK,
    FractureCase,
    case_ids,
    patient_fractured,
    read_case,
    read_grades,
    stratified_folds,
    vertebra_group,
)
from baselines.nn.blocks3d import ConvNormAct3d
from baselines.nn.training import resolve_device, seed_everything, torch_generator
from evaluators.layout import VERTEBRA_LABELS

__all__ = ["TASK", "PAPER", "Config", "PRESETS", "train", "predict", "cross_validate", "summarise",
           "saliency_figure"]

PAPER = (
    "Husseini et al., conditioned variational auto-encoder with an MLP for osteoporotic vertebral fracture "
    "detection in CT, CSI 2019 proceedings, paper 3"
)
MODELS = ("conditioned-vae", "vae", "autoencoder", "encoder")


@dataclass(frozen=True)
class Config:
    model: str = "conditioned-vae"
    patch: int = 64
    spacing_mm: float = 1.5
    hu_scale: float = 1000.0
    channels: tuple[int, ...] = (16, 32, 64, 128)
    latent: int = 64
    mlp_hidden: int = 32
    learning_rate: float = 1e-4
    batch_size: int = 16
    recon_epochs: int = 150
    kl_epochs: int = 450
    classifier_epochs: int = 30
    beta: float = 0.1
    kl_anneal_epochs: int = 50
    rotation_deg: float = 30.0
    threshold: float = 0.5
    folds: int = 5
    min_negatives_per_fold: int = 2
    n_bootstrap: int = 1000
    seed: int = 0

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.patch % 2 ** len(self.channels) or self.bottleneck < 2:
            raise ValueError(
                f"patch={self.patch} must be a multiple of 2 ** len(channels) = {2 ** len(self.channels)} "
                "leaving a bottleneck of at least 2 voxels"
            )

    @property
    def bottleneck(self) -> int:
        """Spatial side of the encoder output (each level halves the patch)."""
        return self.patch // 2 ** len(self.channels)

    @property
    def conditioned(self) -> bool:
        return self.model == "conditioned-vae"

    @property
    def variational(self) -> bool:
        return self.model in ("conditioned-vae", "vae")

    @property
    def body_weighted(self) -> bool:
        """Only Spine-VAE uses Eq. 1's weights; the ablated VAE and the AE baseline use plain MSE."""
        return self.model == "conditioned-vae"

    @property
    def epochs(self) -> int:
        return self.recon_epochs + self.kl_epochs + self.classifier_epochs


PRESETS = {
    "tiny": Config(patch=16, spacing_mm=6.0, channels=(4, 8), latent=8, mlp_hidden=8, learning_rate=3e-3,
                   batch_size=8, recon_epochs=3, kl_epochs=2, classifier_epochs=3, kl_anneal_epochs=1, folds=2,
                   min_negatives_per_fold=1, n_bootstrap=50),
    "standard": Config(patch=24, spacing_mm=4.0, channels=(8, 16, 32), latent=16, mlp_hidden=16,
                       learning_rate=2e-3, batch_size=16, recon_epochs=3, kl_epochs=3, classifier_epochs=10,
                       kl_anneal_epochs=2),
    "paper": Config(),
}


# ------------------------------------------------------------------------------------------------------ data
@dataclass
class Patches:
    """Every vertebra of some cases: masked patches (N, 1, P, P, P), masks, group indices, grades (-1 unknown)."""

    images: torch.Tensor
    masks: torch.Tensor
    groups: torch.Tensor
    grades: torch.Tensor
    case_ids: list[str]
    names: list[str]

    def subset(self, keep) -> Patches:
        keep = np.asarray(keep)
        return Patches(self.images[keep], self.masks[keep], self.groups[keep], self.grades[keep],
                       [self.case_ids[i] for i in keep], [self.names[i] for i in keep])


def _patch_grid(centre, config: Config) -> sitk.Image:
    grid = sitk.Image([config.patch] * 3, sitk.sitkFloat32)
    grid.SetSpacing([config.spacing_mm] * 3)
    grid.SetOrigin([float(c) - config.spacing_mm * (config.patch - 1) / 2 for c in centre])
    return grid


def extract_patches(case: FractureCase, config: Config) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Sect. 3: per vertebra of centroids.json, the CT multiplied by that vertebra's mask, resampled into a
    `patch`^3 box at `spacing_mm` (LPS axes, array [z, y, x]) centred on the centroid. A vertebra absent from the
    label map gets an empty patch (and still a prediction)."""
    names, images, masks = [], [], []
    background = float(sitk.GetArrayViewFromImage(case.image).min())
    for name, centre in case.centroids.items():
        grid = _patch_grid(centre, config)
        image = sitk.Resample(case.image, grid, sitk.Transform(), sitk.sitkLinear, background, sitk.sitkFloat32)
        mask = sitk.Resample(case.vertebrae == VERTEBRA_LABELS[name], grid, sitk.Transform(),
                             sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
        mask_array = sitk.GetArrayFromImage(mask).astype(np.float32)
        names.append(name)
        images.append(sitk.GetArrayFromImage(image) * mask_array / config.hu_scale)
        masks.append(mask_array)
    return names, np.stack(images), np.stack(masks)


def load_patches(data_dir, ids, config: Config, *, grades: dict | None = None) -> Patches:
    """Patches of every vertebra of `ids`; `grades` (training only) gives the Genant grade, -1 when unknown."""
    images, masks, groups, labels, owners, names = [], [], [], [], [], []
    for case_id in ids:
        case_names, case_images, case_masks = extract_patches(read_case(data_dir, case_id), config)
        images.append(case_images)
        masks.append(case_masks)
        for name in case_names:
            groups.append(vertebra_group(name))
            labels.append((grades or {}).get(case_id, {}).get(name, -1))
            owners.append(case_id)
            names.append(name)
    return Patches(torch.from_numpy(np.concatenate(images))[:, None], torch.from_numpy(np.concatenate(masks))[:, None],
                   torch.tensor(groups), torch.tensor(labels), owners, names)


def body_weights(masks: torch.Tensor) -> torch.Tensor:
    """Eq. 1's weight map per patch: 1 at the most anterior mask voxel, falling linearly along the anterior-posterior
    axis (y, increasing posteriorly in LPS) to 0 at the most posterior one (the end of the process), over the whole
    patch. An empty mask gives uniform weights."""
    y = torch.arange(masks.shape[-2], dtype=masks.dtype, device=masks.device)
    present = masks.amax(dim=(1, 2, 4)) > 0  # (N, Y): rows of the AP axis the vertebra occupies
    big = masks.shape[-2]
    front = torch.where(present, y, torch.full_like(y, big)).amin(dim=1)
    back = torch.where(present, y, torch.full_like(y, -1)).amax(dim=1)
    empty = back < front
    span = torch.clamp(back - front, min=1.0)
    weights = ((back[:, None] - y[None, :]) / span[:, None]).clamp(0.0, 1.0)
    weights[empty] = 1.0
    return weights[:, None, None, :, None].expand_as(masks)


def rotate_sagittal(images: torch.Tensor, masks: torch.Tensor, *, max_deg: float, generator: torch.Generator):
    """Random rotation of each patch by up to +-max_deg degrees about the left-right axis (in the sagittal plane)."""
    angles = (torch.rand(len(images), generator=generator) * 2 - 1) * np.deg2rad(max_deg)
    cos, sin = torch.cos(angles), torch.sin(angles)
    theta = torch.zeros(len(images), 3, 4)
    theta[:, 0, 0] = 1.0  # grid coordinates are (x, y, z): x is left-right and stays
    theta[:, 1, 1], theta[:, 1, 2], theta[:, 2, 1], theta[:, 2, 2] = cos, -sin, sin, cos
    grid = F.affine_grid(theta.to(images), list(images.shape), align_corners=False)
    rotated = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    rotated_masks = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return rotated, rotated_masks


def median_frequency_weights(labels: torch.Tensor, classes: int = 2) -> torch.Tensor:
    """zeta (Eq. 3): weight_c = median(freq) / freq_c over the labelled training vertebrae (absent classes get 0)."""
    counts = torch.bincount(labels, minlength=classes).float()
    frequency = counts / counts.sum()
    present = frequency > 0
    weights = torch.zeros(classes)
    # numpy's median (mean of the two middle values), not torch's lower median: with two classes it is their mean
    weights[present] = float(np.median(frequency[present].numpy())) / frequency[present]
    return weights


# --------------------------------------------------------------------------------------------------- network
class SpineVAE(nn.Module):
    """Encoder, (variational) bottleneck, optional group one-hot, decoder and MLP; `config.model` picks the variant
    (the encoder-classifier has no decoder)."""

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        channels = [1, *config.channels]
        self.encoder = nn.Sequential(
            *(ConvNormAct3d(channels[i], channels[i + 1], kernel_size=4, stride=2, padding=1)
              for i in range(len(config.channels))),
            nn.Flatten(),
        )
        flat = config.channels[-1] * config.bottleneck**3
        self.mean = nn.Linear(flat, config.latent)
        self.log_var = nn.Linear(flat, config.latent) if config.variational else None
        self.decoder = self._decoder(config, flat) if config.model != "encoder" else None
        self.classifier = nn.Sequential(
            nn.Linear(config.latent, config.mlp_hidden), nn.ReLU(inplace=True), nn.Linear(config.mlp_hidden, 2)
        )

    @staticmethod
    def _decoder(config: Config, flat: int) -> nn.Module:
        widths = list(reversed(config.channels))
        layers: list[nn.Module] = [
            nn.Linear(config.latent + (len(GROUPS) if config.conditioned else 0), flat),
            nn.Unflatten(1, (widths[0], *(config.bottleneck,) * 3)),
        ]
        for i, width in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else widths[-1]
            layers += [nn.ConvTranspose3d(width, out, kernel_size=4, stride=2, padding=1), nn.BatchNorm3d(out),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv3d(widths[-1], 1, kernel_size=3, padding=1))
        return nn.Sequential(*layers)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        features = self.encoder(images)
        return self.mean(features), (self.log_var(features) if self.log_var is not None else None)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Fracture classification on the latent mean (deterministic)."""
        return self.classifier(self.encode(images)[0])

    def forward(self, images: torch.Tensor, groups: torch.Tensor):
        mean, log_var = self.encode(images)
        code = mean
        if log_var is not None and self.training:
            code = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
        reconstruction = None
        if self.decoder is not None:
            decoder_input = code
            if self.config.conditioned:
                decoder_input = torch.cat([code, F.one_hot(groups, len(GROUPS)).to(code)], dim=1)
            reconstruction = self.decoder(decoder_input)
        return reconstruction, mean, log_var, self.classifier(mean)


def _kl(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over latent dimensions, averaged over the batch."""
    return (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(dim=1)).mean()


def phase_weights(epoch: int, config: Config) -> tuple[float, float, bool]:
    """(reconstruction weight, KL weight, classification on) for an epoch: reconstruction-only epochs, then the KL
    term annealed linearly to beta, then the classifier added (the encoder-classifier trains the classifier only)."""
    if config.model == "encoder":
        return 0.0, 0.0, True
    kl = 0.0
    if config.variational and epoch >= config.recon_epochs:
        kl = config.beta * min(1.0, (epoch - config.recon_epochs + 1) / max(config.kl_anneal_epochs, 1))
    return 1.0, kl, epoch >= config.recon_epochs + config.kl_epochs


# -------------------------------------------------------------------------------------------------- training
def fit(patches: Patches, config: Config, *, device="cpu", progress: bool = True) -> dict:
    """Train on patches (grades >= 0 are labelled); returns the checkpoint dict with per-epoch loss histories."""
    device = resolve_device(device)
    seed_everything(config.seed)
    generator = torch_generator(config.seed)
    model = SpineVAE(config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    labelled = patches.grades >= 0
    class_weights = median_frequency_weights((patches.grades[labelled] >= 1).long()).to(device)
    history = {"losses": [], "recon": [], "kl": [], "ce": []}
    for epoch in tqdm(range(config.epochs), desc=f"fracture {config.model}", disable=not progress):
        recon_weight, kl_weight, classify = phase_weights(epoch, config)
        model.train()
        sums = np.zeros(4)
        order = torch.randperm(len(patches.images), generator=generator)
        batches = order.split(config.batch_size)
        for batch in batches:
            images, masks = rotate_sagittal(patches.images[batch], patches.masks[batch],
                                            max_deg=config.rotation_deg, generator=generator)
            images, masks = images.to(device), masks.to(device)
            reconstruction, mean, log_var, logits = model(images, patches.groups[batch].to(device))
            loss = torch.zeros((), device=device)
            recon = kl = ce = torch.zeros((), device=device)
            if reconstruction is not None:
                weights = body_weights(masks) if config.body_weighted else torch.ones_like(masks)
                recon = (weights * (images - reconstruction).pow(2)).sum(dim=(1, 2, 3, 4)).mean()
                loss = loss + recon_weight * recon
            if log_var is not None:
                kl = _kl(mean, log_var)
                loss = loss + kl_weight * kl
            known = labelled[batch].to(device)
            if classify and known.any():
                targets = (patches.grades[batch].to(device)[known] >= 1).long()
                ce = F.cross_entropy(logits[known], targets, weight=class_weights)
                loss = loss + ce
            if loss.requires_grad:
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            sums += [float(value.detach()) for value in (loss, recon, kl, ce)]
        for key, value in zip(history, sums / len(batches)):
            history[key].append(float(value))
    return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **history,
            "config": asdict(config)}


def train(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Train on every vertebra of a fracture-ct training dataset (inputs + ground_truth/vertebrae.csv)."""
    patches = load_patches(data_dir, case_ids(data_dir), config, grades=read_grades(data_dir))
    return fit(patches, config, device=device, progress=progress)


def load_model(checkpoint: dict, config: Config, device) -> SpineVAE:
    model = SpineVAE(config)
    model.load_state_dict(checkpoint["state"])
    return model.to(device).eval()


@torch.no_grad()
def fracture_probabilities(model: SpineVAE, patches: Patches, *, device, batch_size: int = 64) -> np.ndarray:
    probabilities = [
        torch.softmax(model.logits(patches.images[i:i + batch_size].to(device)), 1)[:, 1].cpu()
        for i in range(0, len(patches.images), batch_size)
    ]
    return torch.cat(probabilities).numpy().astype(float)


def predict(*, checkpoint: dict, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Per vertebra of centroids.json the MLP's fracture probability; the patient score is their maximum. Reads
    only inputs/."""
    device = resolve_device(device)
    model = load_model(checkpoint, config, device)
    predictions = {}
    for case_id in tqdm(case_ids(data_dir), desc=f"fracture {config.model} predict", disable=not progress):
        patches = load_patches(data_dir, [case_id], config)
        scores = fracture_probabilities(model, patches, device=device)
        predictions[case_id] = {"vertebrae": dict(zip(patches.names, scores.tolist())),
                                "patient": float(scores.max())}
    return predictions


# ------------------------------------------------------------------------------------------------ evaluation
def cross_validate(*, data_dir, config: Config, device="auto", progress: bool = True) -> dict:
    """Sect. 3.2: k-fold cross-validation; folds split patients (all vertebrae of a patient stay together),
    stratified by whether the patient has a fracture. Returns per-vertebra held-out scores, grades (-1 unknown),
    folds and patient ids, plus the last fold's checkpoint and held-out case ids."""
    ids = case_ids(data_dir)
    grades = read_grades(data_dir)
    positive = [patient_fractured(grades.get(case_id, {})) for case_id in ids]
    folds = stratified_folds(positive, n_folds=config.folds, min_negatives=config.min_negatives_per_fold,
                             seed=config.seed)
    patches = load_patches(data_dir, ids, config, grades=grades)
    owner = np.asarray([ids.index(case_id) for case_id in patches.case_ids])
    device = resolve_device(device)
    result = {"scores": np.zeros(len(owner)), "fold": np.zeros(len(owner), int), "losses": [],
              "grades": patches.grades.numpy(), "clusters": np.asarray(patches.case_ids)}
    for fold, test in enumerate(folds):
        held_out = np.isin(owner, test)
        checkpoint = fit(patches.subset(np.flatnonzero(~held_out)), replace(config, seed=config.seed + fold),
                         device=device, progress=progress)
        result["losses"].append(checkpoint["losses"])
        model = load_model(checkpoint, config, device)
        result["scores"][held_out] = fracture_probabilities(model, patches.subset(np.flatnonzero(held_out)),
                                                            device=device)
        result["fold"][held_out] = fold
    # the last fold's model and its held-out patients, for the saliency figure
    result["checkpoint"], result["held_out_cases"] = checkpoint, [ids[i] for i in folds[-1]]
    return result


def summarise(result: dict, config: Config) -> dict:
    """Recall, precision, F1 and specificity at `threshold` (mean and std over folds, as the paper's Table 1),
    pooled ROC AUC with a patient-clustered bootstrap interval, and recall per Genant grade (pooled)."""
    from evaluators import metrics

    known = result["grades"] >= 0
    grades, scores = result["grades"][known], result["scores"][known]
    labels, folds = (grades >= 1).astype(int), result["fold"][known]
    per_fold = [metrics.binary_scores(labels[folds == f], scores[folds == f], threshold=config.threshold)
                for f in np.unique(folds)]
    summary = {}
    for key in ("recall", "precision", "f1", "specificity"):
        values = np.asarray([float(scores_[key]) for scores_ in per_fold], dtype=float)
        summary[key] = (float(np.nanmean(values)), float(np.nanstd(values)))
    summary["auc"] = metrics.roc_auc_ci(labels, scores, n_bootstrap=config.n_bootstrap, seed=config.seed,
                                        clusters=result["clusters"][known])
    summary["recall_per_grade"] = metrics.recall_per_grade(grades, scores, threshold=config.threshold)
    return summary


# -------------------------------------------------------------------------------------------------- saliency
def saliency(model: SpineVAE, images: torch.Tensor) -> torch.Tensor:
    """|d fracture logit / d input| per voxel (Fig. 5), for a batch of patches."""
    images = images.clone().requires_grad_(True)
    model.logits(images)[:, 1].sum().backward()
    return images.grad.abs()


def saliency_figure(*, checkpoint: dict, config: Config, patches: Patches, out, count: int = 4) -> Path:
    """A PNG of up to `count` vertebrae: the mid-sagittal slice of each masked patch with the saliency of the
    fracture logit overlaid (fractured vertebrae first)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model = load_model(checkpoint, config, "cpu")
    order = np.argsort(-patches.grades.numpy(), kind="stable")[:count]
    chosen = patches.subset(order)
    maps = saliency(model, chosen.images).numpy()[:, 0]
    middle = config.patch // 2
    figure, axes = plt.subplots(1, len(order), figsize=(2.6 * len(order), 2.8), squeeze=False)
    for axis, image, heat, name, grade in zip(axes[0], chosen.images.numpy()[:, 0], maps, chosen.names,
                                              chosen.grades.tolist()):
        # the sagittal plane is a fixed x (last axis); show z up and anterior on the left
        axis.imshow(image[:, :, middle], cmap="gray", origin="lower")
        # normalised per patch; the weakest quarter is left out so the vertebra stays visible
        heat = heat[:, :, middle] / max(float(heat.max()), 1e-12)
        axis.imshow(np.ma.masked_less(heat, 0.25), cmap="jet", alpha=0.6, vmin=0, vmax=1, origin="lower")
        axis.set_title(f"{name} grade {grade}" if grade >= 0 else name, fontsize=9)
        axis.axis("off")
    figure.suptitle(f"{config.model}: saliency of the fracture logit (mid-sagittal)", fontsize=10)
    figure.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
