"""AASCE cases as arrays for AASCE methods 5-9: letterboxed images with their landmarks and angles mapped alike.

`load_cases(data_dir, size=(H, W), ground_truth=True)` reads a SpineBench `aasce-cobb` dataset folder
(docs/formats.md); with ``ground_truth=False`` it touches only ``inputs/`` (what `predict` must do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm
from PIL import Image

from evaluators.layout import GROUND_TRUTH, case_input_dir, read_manifest


@dataclass
class Case:
    id: str
    image: np.ndarray  # (H, W) float32 in [0, 1], letterboxed to the requested size
    scale: float  # resized = original * scale + offset
    offset: tuple[float, float]  # (x, y) padding in resized pixels
    original_shape: tuple[int, int]
    landmarks: np.ndarray | None = None  # (68, 2) in resized pixels
    angles: np.ndarray | None = None  # (3,) degrees

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map (N, 2) points from resized pixels back to the original image's pixels."""
        return (np.asarray(points, dtype=np.float64) - np.asarray(self.offset)) / self.scale


def letterbox(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float, tuple[float, float]]:
    """Resize keeping the aspect ratio so the image fits (H, W), then pad with zeros to centre it."""
    height, width = image.shape
    scale = min(size[0] / height, size[1] / width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    resized = np.asarray(Image.fromarray(image.astype(np.float32), mode="F").resize((new_w, new_h), Image.BILINEAR))
    out = np.zeros(size, np.float32)
    top, left = (size[0] - new_h) // 2, (size[1] - new_w) // 2
    out[top : top + new_h, left : left + new_w] = resized
    # pixel centres: resized x = (x + 0.5) * (new_w / width) - 0.5 + left
    sx = new_w / width
    return out, sx, (left + 0.5 * sx - 0.5, top + 0.5 * (new_h / height) - 0.5)


def read_image(path: Path) -> np.ndarray:
    """8-bit grey PNG -> float32 in [0, 1], divided by the image's own maximum."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing input image (expected inputs/<case_id>/image.png)")
    array = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    return array / max(float(array.max()), 1.0)


def load_cases(data_dir, *, size: tuple[int, int], ground_truth: bool) -> list[Case]:
    data_dir = Path(data_dir)
    manifest = read_manifest(data_dir)
    if manifest.task != "aasce-cobb":
        raise ValueError(f"{data_dir}: dataset task is {manifest.task!r}, expected 'aasce-cobb'")
    landmarks = angles = None
    if ground_truth:
        gt = data_dir / GROUND_TRUTH
        angles = pd.read_csv(gt / "angles.csv", dtype={"case_id": str}).set_index("case_id")
        landmarks = pd.read_csv(gt / "landmarks.csv", dtype={"case_id": str}).set_index("case_id")
    cases = []
    for case_id in manifest.case_ids:
        raw = read_image(case_input_dir(data_dir, case_id) / "image.png")
        image, scale, offset = letterbox(raw, size)
        case = Case(id=case_id, image=image, scale=scale, offset=offset, original_shape=raw.shape)
        if ground_truth:
            if case_id not in angles.index or case_id not in landmarks.index:
                raise ValueError(f"{data_dir / GROUND_TRUTH}: no ground truth row for case {case_id!r}")
            row = landmarks.loc[case_id]
            xs = row[[f"x{i}" for i in range(1, 69)]].to_numpy(np.float64)
            ys = row[[f"y{i}" for i in range(1, 69)]].to_numpy(np.float64)
            case.landmarks = np.column_stack([xs, ys]) * scale + np.asarray(offset)
            case.angles = angles.loc[case_id, ["pt", "mt", "tl"]].to_numpy(np.float64)
        cases.append(case)
    return cases


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available, else cpu."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def autocast(device: torch.device):
    """Mixed precision on cuda, a no-op context on cpu."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=device.type == "cuda")


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
