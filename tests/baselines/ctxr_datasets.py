"""Datasets for the CT/XR baseline tests: E2's small phantoms, and a blinded copy without ground truth."""

from __future__ import annotations

import shutil
from pathlib import Path

import phantoms


def build(task: str, out: Path, *, cases: int, seed: int, test: bool = False) -> Path:
    """A small generated dataset folder (``phantoms.generate(..., small=True)``)."""
    return phantoms.generate(task, out=out, cases=cases, seed=seed, domain="test" if test else "train", small=True,
                             progress=False)


def without_ground_truth(dataset: Path, copy: Path) -> Path:
    """A copy of ``dataset`` with its ground_truth/ folder removed (all that predict() may see)."""
    shutil.copytree(dataset, copy)
    shutil.rmtree(copy / "ground_truth")
    return copy
