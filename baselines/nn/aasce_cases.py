"""AASCE cases as arrays for AASCE methods 5-9, on top of ``baselines.data`` (reading, letterboxing, enhancement).

- ``load_cases(data_dir, *, size=(H, W), ground_truth, enhancement="none")`` -> ``list[Case]``: each image enhanced
  (``baselines.data.enhance``; "none" divides by the image maximum) and letterboxed to ``size``, landmarks mapped
  alike. With ``ground_truth=False`` only ``inputs/`` is read (what `predict` must do).
- ``Case.cropped(box, size)``: a new case letterboxing a region of the original image (automatic cropping steps).
- ``fit``: a mini-batch loop over numpy arrays; ``shift_batch``, ``random_affine``, ``intensity_augment``: the
  augmentations these methods apply to whole batches of images and target maps together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from baselines.data import Letterbox, enhance, letterbox, read_cases
from baselines.nn.training import autocast


@dataclass
class Case:
    id: str
    image: np.ndarray  # (H, W) float32 in [0, 1], letterboxed to the requested size
    box: Letterbox  # original crop pixels <-> resized pixels
    raw: np.ndarray  # the original uint8 image
    enhancement: str = "none"
    origin: tuple[float, float] = (0.0, 0.0)  # (x, y) of the crop's top-left pixel in the original image
    landmarks: np.ndarray | None = None  # (68, 2) in resized pixels
    angles: np.ndarray | None = None  # (3,) degrees

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from resized pixels back to the original image's pixels."""
        return self.box.to_original(points) + np.asarray(self.origin)

    def to_resized(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from original pixels to resized pixels (inverse of `to_original`)."""
        return self.box.to_resized(np.asarray(points, dtype=np.float64) - np.asarray(self.origin))

    def cropped(self, box: tuple[float, float, float, float], size: tuple[int, int]) -> "Case":
        """A new case letterboxing the region `box` = (x0, y0, x1, y1) (resized pixels of this case, clipped to the
        original image) to `size`; landmarks follow, angles are kept."""
        (x0, y0), (x1, y1) = self.to_original(np.array([box[:2], box[2:]]))
        height, width = self.raw.shape
        x0, y0 = int(np.clip(np.floor(x0), 0, width - 1)), int(np.clip(np.floor(y0), 0, height - 1))
        x1, y1 = int(np.clip(np.ceil(x1), x0 + 1, width)), int(np.clip(np.ceil(y1), y0 + 1, height))
        image, frame = letterbox(enhance(self.raw[y0:y1, x0:x1], self.enhancement), size)
        case = Case(id=self.id, image=image, box=frame, raw=self.raw, enhancement=self.enhancement,
                    origin=(float(x0), float(y0)), angles=self.angles)
        if self.landmarks is not None:
            case.landmarks = case.to_resized(self.to_original(self.landmarks))
        return case

    @property
    def original_height(self) -> int:
        return int(self.raw.shape[0])


def load_cases(data_dir, *, size: tuple[int, int], ground_truth: bool, enhancement: str = "none") -> list[Case]:
    out = []
    for case in read_cases(data_dir, ground_truth=ground_truth):
        image, frame = letterbox(enhance(case.image, enhancement), size)
        landmarks = frame.to_resized(case.landmarks) if case.landmarks is not None else None
        out.append(Case(id=case.id, image=image, box=frame, raw=case.image, enhancement=enhancement,
                        landmarks=landmarks, angles=case.angles))
    return out


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def fit(
    parameters,
    *,
    arrays: dict[str, np.ndarray],
    loss_fn,
    epochs: int,
    batch_size: int,
    optimiser: torch.optim.Optimizer,
    device: torch.device,
    rng: np.random.Generator,
    augment=None,
    desc: str = "train",
    progress: bool = True,
) -> list[float]:
    """Mini-batch training: every epoch shuffles the cases, slices each array of `arrays` (first axis = case),
    applies ``augment(batch, rng)`` to the numpy batch, moves it to `device` and steps `optimiser` on
    ``loss_fn(batch)`` (under mixed precision on cuda). Returns the loss of every step."""
    parameters = list(parameters)
    count = len(next(iter(arrays.values())))
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
    losses = []
    for _ in tqdm(range(epochs), desc=desc, disable=not progress):
        order = rng.permutation(count)
        for start in range(0, count, batch_size):
            index = order[start : start + batch_size]
            batch = {key: value[index] for key, value in arrays.items()}
            if augment is not None:
                batch = augment(batch, rng)
            batch = {key: torch.as_tensor(np.ascontiguousarray(value), device=device) for key, value in batch.items()}
            with autocast(device):
                loss = loss_fn(batch)
            optimiser.zero_grad()
            scaler.scale(loss).backward()
            scaler.unscale_(optimiser)
            torch.nn.utils.clip_grad_norm_(parameters, 10.0)
            scaler.step(optimiser)
            scaler.update()
            losses.append(float(loss.detach()))
    return losses


def shift_batch(batch: dict[str, np.ndarray], rng: np.random.Generator, *, fraction: float) -> dict[str, np.ndarray]:
    """Translate every image-shaped array of a batch (trailing axes (H, W)) by one random integer shift per case,
    zero filled; arrays whose last two axes differ from the first array's are left alone."""
    first = next(iter(batch.values()))
    height, width = first.shape[-2:]
    out = {key: np.zeros_like(value) if value.shape[-2:] == (height, width) and value.ndim >= 3 else value for key, value in batch.items()}
    for index in range(len(first)):
        dy = int(rng.integers(-int(fraction * height), int(fraction * height) + 1))
        dx = int(rng.integers(-int(fraction * width), int(fraction * width) + 1))
        src = (slice(max(0, -dy), height - max(0, dy)), slice(max(0, -dx), width - max(0, dx)))
        dst = (slice(max(0, dy), height - max(0, -dy)), slice(max(0, dx), width - max(0, -dx)))
        for key, value in batch.items():
            if out[key] is not value:
                out[key][index][(..., *dst)] = value[index][(..., *src)]
    return out


def random_affine(maps: torch.Tensor, rng: np.random.Generator, *, degrees: float, translate: float, flip: bool) -> torch.Tensor:
    """Apply one random rotation (uniform in +-`degrees`), translation (+-`translate` of the size) and, when `flip`,
    a horizontal flip with probability 1/2 per case to every channel of (N, C, H, W) `maps` (bilinear, zero fill)."""
    count = maps.shape[0]
    angle = np.radians(rng.uniform(-degrees, degrees, count))
    sign = np.where(rng.random(count) < 0.5, -1.0, 1.0) if flip else np.ones(count)
    shift = rng.uniform(-translate, translate, (count, 2)) * 2
    height, width = maps.shape[-2:]
    aspect = height / width
    theta = np.zeros((count, 2, 3))
    # rotation in pixel space, expressed in the normalised [-1, 1] coordinates affine_grid uses
    theta[:, 0, 0] = np.cos(angle) * sign
    theta[:, 0, 1] = -np.sin(angle) * aspect
    theta[:, 1, 0] = np.sin(angle) / aspect * sign
    theta[:, 1, 1] = np.cos(angle)
    theta[:, :, 2] = shift
    grid = F.affine_grid(torch.as_tensor(theta, dtype=maps.dtype, device=maps.device), list(maps.shape), align_corners=False)
    return F.grid_sample(maps, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def intensity_augment(images: torch.Tensor, rng: np.random.Generator, *, kind: str) -> torch.Tensor:
    """'gaussian': add noise of std up to 0.05; 'bc': random brightness (+-0.1) and contrast (x0.8-1.2) per case;
    'none': unchanged."""
    count = images.shape[0]
    shape = (count,) + (1,) * (images.ndim - 1)
    if kind == "gaussian":
        std = torch.as_tensor(rng.uniform(0, 0.05, count), dtype=images.dtype, device=images.device).view(shape)
        return images + std * torch.randn_like(images)
    if kind == "bc":
        gain = torch.as_tensor(rng.uniform(0.8, 1.2, count), dtype=images.dtype, device=images.device).view(shape)
        bias = torch.as_tensor(rng.uniform(-0.1, 0.1, count), dtype=images.dtype, device=images.device).view(shape)
        mean = images.mean(dim=tuple(range(1, images.ndim)), keepdim=True)
        return (images - mean) * gain + mean + bias
    if kind == "none":
        return images
    raise ValueError(f"intensity augmentation must be 'gaussian', 'bc' or 'none', got {kind!r}")


def spine_box(top: float, bottom: float, centre_x: float, *, margin: float, aspect: float) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a spine region: rows `top`..`bottom` enlarged by `margin` of their span above and below,
    `aspect` times taller than wide, centred on column `centre_x`."""
    pad = margin * (bottom - top)
    top, bottom = top - pad, bottom + pad
    half_width = (bottom - top) / aspect / 2
    return centre_x - half_width, top, centre_x + half_width, bottom


def crop_to_landmarks(case: Case, *, margin: float, size: tuple[int, int]) -> Case:
    """Training-time crop: the landmark span with `margin`, shaped like the network input `size` (H, W)."""
    box = spine_box(case.landmarks[:, 1].min(), case.landmarks[:, 1].max(), case.landmarks[:, 0].mean(),
                    margin=margin, aspect=size[0] / size[1])
    return case.cropped(box, size)


def crop_to_mask(case: Case, mask: np.ndarray, *, margin: float, size: tuple[int, int]) -> Case:
    """Test-time automatic crop: the rows and mean column of `mask` > 0.5 (a predicted spine map on this case's
    grid), with `margin`, shaped like `size`; the case is returned unchanged when the mask is empty."""
    rows, cols = np.nonzero(mask > 0.5)
    if len(rows) < 2:
        return case
    box = spine_box(rows.min(), rows.max(), cols.mean(), margin=margin, aspect=size[0] / size[1])
    return case.cropped(box, size)
