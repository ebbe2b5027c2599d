"""What every baseline's training shares: the device, seeding and determinism, mixed precision on CUDA, the one
optimisation loop, progress bars, batching.

- ``resolve_device("auto"|None|"cpu"|"cuda"|...)``: "auto" (or None) is CUDA when available, else CPU; asking for
  CUDA without it is an error naming the way out.
- ``seed_everything(seed) -> np.random.Generator``: seeds Python's, numpy's global and torch's generators (CPU and
  every CUDA device), makes torch choose deterministic algorithms where it has them and returns
  ``np.random.default_rng(seed)``, the generator a training run draws its own randomness from (every method uses
  this one rule). ``torch_generator(seed)``: a seeded ``torch.Generator`` for torch-side sampling.
- ``autocast(device)``: ``torch.autocast("cuda", dtype=torch.float16)`` on a CUDA device, a no-op context elsewhere.
- ``GradScalerStep(device)``: ``step(loss, optimizer, *, clip_norm=None, parameters=())`` zeroes the gradients,
  runs backward, clips the gradient norm when asked and steps, with loss scaling on CUDA (``torch.amp.GradScaler``).
- ``run_steps(loss_fn, optimizer, *, steps, device, ...) -> list[float]``: THE optimisation loop of every AASCE
  method: ``steps`` times ``loss_fn(step)`` under ``autocast``, one ``GradScalerStep``, an optional scheduler step;
  returns every step's loss. ``optimise`` (a step budget; builds Adam or SGD, optionally cosine-annealed) and
  ``fit`` (epochs of shuffled mini-batches over numpy arrays, optionally augmented) are the two ways methods drive it.
- ``progress(iterable, *, enabled, desc, total=None)``: a tqdm bar when enabled, the iterable itself otherwise.
- ``batches(count, batch_size, *, rng)``: an endless stream of shuffled index batches (epoch after epoch).
- ``state_to_cpu(module)``: the module's ``state_dict`` with every tensor moved to the CPU (for checkpoints).

Determinism. With the same seed, a CPU training run repeats exactly (``tests/baselines/test_training.py``). On CUDA,
``seed_everything`` sets ``torch.use_deterministic_algorithms(True, warn_only=True)``, turns off cuDNN's benchmark
autotuner, asks cuDNN for deterministic kernels and sets ``CUBLAS_WORKSPACE_CONFIG`` (needed by deterministic cuBLAS;
it only takes effect when set before CUDA starts, so the baselines set it on import). Torch has no deterministic CUDA
kernel for some backward passes these methods use, among them ``grid_sample`` (spatial augmentation, rotated RoI
crops), ``interpolate`` with bilinear/trilinear modes, adaptive average pooling (PSPNet, pyramid pooling) and
``index_add``/scatter-add reductions inside torchvision's detection losses: there it warns once per operation and
stays non-deterministic, so GPU runs of the same seed can differ by floating-point reduction order. No method uses
a ``DataLoader``: batches are sliced from arrays in the main process with the run's ``rng``, so there are no worker
processes to seed.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

# deterministic cuBLAS needs this before CUDA initialises; harmless on the CPU
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available; use --device cpu or auto")
    return resolved


def seed_everything(seed: int) -> np.random.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    return np.random.default_rng(seed)


def torch_generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def autocast(device: torch.device):
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class GradScalerStep:
    def __init__(self, device: torch.device):
        self.enabled = torch.device(device).type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.enabled else None

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, *, clip_norm: float | None = None,
             parameters: Iterable[torch.nn.Parameter] = ()) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            if clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if clip_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(parameters, clip_norm)
        self.scaler.step(optimizer)
        self.scaler.update()


def run_steps(
    loss_fn: Callable[[int], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    device: torch.device,
    progress: bool,
    desc: str,
    scheduler=None,
    clip_norm: float | None = None,
    parameters: Iterable[torch.nn.Parameter] = (),
) -> list[float]:
    parameters = list(parameters)
    stepper = GradScalerStep(device)
    losses = []
    for step in tqdm(range(steps), desc=desc, leave=False) if progress else range(steps):
        with autocast(device):
            loss = loss_fn(step)
        stepper.step(loss, optimizer, clip_norm=clip_norm, parameters=parameters)
        if scheduler is not None:
            scheduler.step()
        losses.append(float(loss.detach()))
    return losses


def optimise(
    loss_fn: Callable[[int], torch.Tensor],
    parameters,
    *,
    steps: int,
    lr: float,
    device: torch.device,
    progress: bool,
    desc: str,
    optimizer: str = "adam",
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    cosine: bool = False,
) -> list[float]:
    """``steps`` optimiser steps (Adam or SGD, optionally cosine-annealed) on ``loss_fn(step)``."""
    parameters = [p for p in parameters if p.requires_grad]
    if optimizer == "adam":
        opt = torch.optim.Adam(parameters, lr=lr, betas=(0.9, 0.999), weight_decay=weight_decay)
    elif optimizer == "sgd":
        opt = torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)
    else:
        raise ValueError(f"optimizer must be 'adam' or 'sgd', got {optimizer!r}")
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1)) if cosine else None
    return run_steps(loss_fn, opt, steps=steps, device=device, progress=progress, desc=desc, scheduler=schedule)


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
    clip_norm: float = 10.0,
) -> list[float]:
    """Epochs of mini-batches: every epoch shuffles the cases, slices each array of ``arrays`` (first axis = case),
    applies ``augment(batch, rng)`` to the numpy batch, moves it to ``device`` and steps ``optimiser`` on
    ``loss_fn(batch)`` through ``run_steps`` (gradient norm clipped at ``clip_norm``). Returns every step's loss."""
    count = len(next(iter(arrays.values())))
    per_epoch = -(-count // batch_size)

    def batch_stream() -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(epochs):
            order = rng.permutation(count)
            for start in range(0, count, batch_size):
                index = order[start : start + batch_size]
                batch = {key: value[index] for key, value in arrays.items()}
                if augment is not None:
                    batch = augment(batch, rng)
                yield {key: torch.as_tensor(np.ascontiguousarray(value), device=device) for key, value in batch.items()}

    stream = batch_stream()
    return run_steps(lambda _step: loss_fn(next(stream)), optimiser, steps=epochs * per_epoch, device=device,
                     progress=progress, desc=desc, clip_norm=clip_norm, parameters=parameters)


def progress(iterable: Iterable, *, enabled: bool, desc: str, total: int | None = None) -> Iterable:
    return tqdm(iterable, desc=desc, total=total, leave=False) if enabled else iterable


def batches(count: int, batch_size: int, *, rng: np.random.Generator) -> Iterator[np.ndarray]:
    if count < 1:
        raise ValueError("no training cases")
    while True:
        order = rng.permutation(count)
        for start in range(0, count, batch_size):
            yield order[start : start + batch_size]


def state_to_cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu() for key, value in module.state_dict().items()}
