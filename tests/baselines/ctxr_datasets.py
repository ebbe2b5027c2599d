"""Datasets for the CT/XR baseline tests: small generated phantoms (the blind copy is
tests.conftest.without_ground_truth)."""

from __future__ import annotations

from pathlib import Path

import phantoms


def build(task: str, out: Path, *, cases: int, seed: int, test: bool = False) -> Path:
    """A small generated dataset folder (``phantoms.generate(..., small=True)``)."""
    return phantoms.generate(
        task, out=out, cases=cases, seed=seed, domain="test" if test else "train", small=True, progress=False
    )
