"""Small helpers every training loop shares: seeding, mixed precision on CUDA, progress bars, batching.

- ``seed_everything(seed)``: Python, numpy and torch generators.
- ``autocast(device)``: ``torch.autocast("cuda", dtype=torch.float16)`` on a CUDA device, a no-op context elsewhere.
- ``GradScalerStep(device)``: ``step(loss, optimizer)`` does backward + optimizer step, with loss scaling on CUDA
  (``torch.amp.GradScaler``) and plain ``backward()``/``step()`` on the CPU; it zeroes gradients first.
- ``progress(iterable, *, enabled, desc, total=None)``: a tqdm bar when enabled, the iterable itself otherwise.
- ``batches(count, batch_size, *, rng)``: an endless stream of shuffled index batches (epoch after epoch).
- ``state_to_cpu(module)``: the module's ``state_dict`` with every tensor moved to the CPU (for checkpoints).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast(device: torch.device):
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


class GradScalerStep:
    def __init__(self, device: torch.device):
        self.enabled = torch.device(device).type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda") if self.enabled else None

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()


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
