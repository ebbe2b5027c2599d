"""Pieces every generator shares: per-case random streams, deterministic file writers, the dataset skeleton and the
generation loop with its progress bar.

Determinism: every case draws from its own `numpy.random.Generator` seeded with (seed, task, case index), so a case's
files do not depend on how many cases come before it, and the writers embed nothing variable (PNG without time
chunks, gzip headers with mtime 0 as SimpleITK's NIfTI writer produces them, JSON in insertion order).
"""

from __future__ import annotations

import json
import multiprocessing
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import SimpleITK as sitk
from PIL import Image
from tqdm import tqdm

from evaluators.layout import CaseEntry, Manifest, case_input_dir, ground_truth_dir, write_manifest


def case_rng(seed: int, task_id: str, index: int) -> np.random.Generator:
    """An independent random stream for case `index` of `task_id` (stable across Python runs: no `hash()`)."""
    return np.random.default_rng([int(seed), zlib.crc32(task_id.encode("utf-8")), int(index)])


def case_id(index: int) -> str:
    return f"case_{index + 1:04d}"


def write_png(path: Path, array: np.ndarray) -> Path:
    """8-bit grey PNG; Pillow writes no time chunk, so equal arrays give equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path, format="PNG", compress_level=1)
    return path


def write_image(path: Path, image: sitk.Image) -> Path:
    """Write with SimpleITK (gzip level 1: noisy volumes barely compress further); its NIfTI writer gzips with mtime 0
    and embeds no date, so output is byte-stable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), useCompression=True, compressionLevel=1)
    return path


def volume_image(
    array_zyx: np.ndarray, *, spacing_xyz: Iterable[float], origin_xyz: Iterable[float] = (0.0, 0.0, 0.0),
    dtype: npt.DTypeLike = np.int16,
) -> sitk.Image:
    """A SimpleITK image from a (z, y, x) numpy array with identity direction."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array_zyx.astype(dtype, copy=False)))
    image.SetSpacing(tuple(float(s) for s in spacing_xyz))
    image.SetOrigin(tuple(float(o) for o in origin_xyz))
    return image


def write_json(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def rounded(values: Iterable[float], digits: int = 3) -> list[float]:
    return [round(float(v), digits) for v in values]


@dataclass(frozen=True)
class GeneratedCase:
    """What one generator call returns for the manifest and the montage."""

    id: str
    group: str | None
    preview: np.ndarray | None  # 2D uint8 image for the montage (any size; None past the montage's cases)
    extra: dict[str, Any] | None = None
    rows: dict[str, list[Any]] = field(default_factory=dict)  # split-wide ground-truth rows by table name


Job = tuple[str, "str | None", Callable[[Path, Path], GeneratedCase]]
#: (jobs, out, gt_dir, montage cases) in a forked worker (closures cannot be pickled)
_WORKER_STATE: tuple[Any, ...] = ()


def _run_job(jobs: list[Job], out: Path, gt_dir: Path, montage_cases: int, index: int) -> GeneratedCase:
    cid, _group, writer = jobs[index]
    case = writer(case_input_dir(out, cid), gt_dir)
    preview = thumbnail(case.preview) if index < montage_cases and case.preview is not None else None
    return GeneratedCase(id=case.id, group=case.group, preview=preview, extra=case.extra, rows=case.rows)


def _install_worker(*state: Any) -> None:
    global _WORKER_STATE
    _WORKER_STATE = state


def _run_in_worker(index: int) -> GeneratedCase:
    jobs, out, gt_dir, montage_cases = _WORKER_STATE
    return _run_job(jobs, out, gt_dir, montage_cases, index)


def thumbnail(array: np.ndarray) -> np.ndarray:
    from phantoms.montage import TILE_HEIGHT

    image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
    width = max(1, round(image.width * TILE_HEIGHT / image.height))
    return np.asarray(image.resize((width, TILE_HEIGHT), Image.Resampling.BILINEAR))


def run_cases(
    *,
    task_id: str,
    out: str | Path,
    seed: int | None,
    domain: str,
    jobs: Iterable[Job],
    total: int,
    progress: bool,
    source: str = "generated",
    labels_model_derived: bool = False,
    finish: Callable[[Path, list[GeneratedCase]], None] | None = None,
    montage_cases: int = 12,
    workers: int = 1,
) -> Path:
    """Run case writers, then write the manifest and the montage. A job is (case id, group, writer); the writer gets
    (input dir, ground-truth dir) and returns a GeneratedCase. `finish` writes split-wide ground-truth files from the
    cases' rows. `workers` > 1 runs the writers in that many forked processes; cases come back in order, and every
    case has its own random stream, so the files are the same as with one worker."""
    from phantoms.montage import write_montage

    out = Path(out)
    gt_dir = ground_truth_dir(out)
    gt_dir.mkdir(parents=True, exist_ok=True)
    jobs = list(jobs)
    bar = dict(total=total, desc=f"phantoms {task_id}", unit="case", disable=not progress)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        # forked workers inherit the jobs through the initializer's arguments (fork does not pickle them)
        state = (jobs, out, gt_dir, montage_cases)
        with multiprocessing.get_context("fork").Pool(workers, initializer=_install_worker, initargs=state) as pool:
            done = list(tqdm(pool.imap(_run_in_worker, range(len(jobs))), **bar))
    else:
        done = [_run_job(jobs, out, gt_dir, montage_cases, index) for index in tqdm(range(len(jobs)), **bar)]
    if finish is not None:
        finish(gt_dir, done)
    manifest = Manifest(
        task=task_id,
        split="test" if domain == "test" else "train",
        domain=domain,
        source=source,
        labels_model_derived=labels_model_derived,
        seed=seed,
        cases=tuple(CaseEntry(id=c.id, group=c.group, extra=dict(c.extra or {})) for c in done),
    )
    write_manifest(out, manifest)
    previews = [(c.id, c.preview) for c in done if c.preview is not None]
    if previews:
        write_montage(out / "preview.png", previews)
    return out


def table_rows(cases: list[GeneratedCase], name: str) -> list[Any]:
    """The rows every case contributed to the split-wide table `name`, in case order."""
    return [row for case in cases for row in case.rows.get(name, [])]
