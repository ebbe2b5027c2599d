"""Phantom generation rates and memory (a benchmark, not a test).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/phantoms_generation.py [--aasce 20] [--ct 3]

Prints, with one process and with two (`workers=2`, the machine's two cores):
- aasce-cobb radiographs per second (full size, PNG written) against the issue's target of 20/s, and against the
  floor measured in the same run: writing a random image of the same size as PNG (encoding alone, one process);
- CT throughput as 256 x 256 x 200 volume-equivalents per second (voxels written per second / 13.1 M) for
  fracture-ct and lumbosacral-ct, against the target of 1/s and against the floor of drawing the noise of one such
  volume and writing it as .nii.gz;
- the peak traced memory of generating 2 and then 6 cases (it must not grow with the number of cases).
Each rate is also given per CPU-second (user + system time of the process and its workers): on a loaded shared
machine that is what the generator costs, and twice it is what the two cores give when they are free.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import SimpleITK as sitk

import phantoms
from phantoms.common import volume_image, write_image, write_png

REFERENCE_VOXELS = 256 * 256 * 200
AASCE_TARGET, CT_TARGET = 20.0, 1.0


CPU_SECONDS: list[float] = []  # CPU time (this process and its finished children) of the last `timed` call


def cpu_now() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(function):
    """Run `function`; return its result and wall seconds, recording its CPU seconds in CPU_SECONDS (on a loaded,
    shared machine the CPU time says what the generator costs, the wall time what it got)."""
    start, cpu = time.perf_counter(), cpu_now()
    result = function()
    CPU_SECONDS[:] = [cpu_now() - cpu]
    return result, time.perf_counter() - start


def aasce_rate(cases: int, work: Path, workers: int) -> tuple[float, float, float]:
    out, seconds = timed(lambda: phantoms.generate("aasce-cobb", out=work / f"aasce{workers}", cases=cases, seed=0,
                                                   progress=False, workers=workers))
    per_core = cases / CPU_SECONDS[0]
    shapes = [sitk.ReadImage(str(p)).GetSize() for p in sorted((out / "inputs").rglob("image.png"))]
    rng = np.random.default_rng(0)
    _, floor_seconds = timed(lambda: [write_png(work / "floor.png", rng.integers(0, 255, (h, w), dtype=np.uint8))
                                      for w, h in shapes])
    return cases / seconds, cases / floor_seconds, per_core


def ct_rate(task: str, cases: int, work: Path, workers: int) -> tuple[float, float]:
    out, seconds = timed(lambda: phantoms.generate(task, out=work / f"{task}{workers}", cases=cases, seed=0,
                                                   progress=False, workers=workers))
    per_core = CPU_SECONDS[0]
    voxels = sum(np.prod(sitk.ReadImage(str(p)).GetSize()) for p in (out / "inputs").rglob("image.nii.gz"))
    return voxels / seconds / REFERENCE_VOXELS, voxels / per_core / REFERENCE_VOXELS


def ct_floor(work: Path) -> float:
    rng = np.random.default_rng(0)

    def one():
        noise = (rng.standard_normal((200, 256, 256), dtype=np.float32) * 20).astype(np.int16)
        write_image(work / "floor.nii.gz", volume_image(noise, spacing_xyz=(0.8, 0.8, 2.0)))

    _, seconds = timed(one)
    return 1.0 / seconds


def peak_memory(task: str, cases: int, work: Path) -> float:
    tracemalloc.start()
    phantoms.generate(task, out=work / f"mem-{task}-{cases}", cases=cases, seed=1, progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aasce", type=int, default=20, help="AASCE images to generate")
    parser.add_argument("--ct", type=int, default=3, help="CT volumes per CT task")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for workers in (1, 2):
            rate, floor, per_core = aasce_rate(args.aasce, work, workers)
            print(f"aasce-cobb, {workers} process(es): {rate:.2f} images/s; target {AASCE_TARGET:.0f}/s -> ratio "
                  f"{rate / AASCE_TARGET:.2f}; PNG-encoding floor {floor:.2f}/s -> {rate / floor:.2f} of the floor; "
                  f"{per_core:.2f} images per CPU-second (x2 cores -> ratio {2 * per_core / AASCE_TARGET:.2f})")
        floor = ct_floor(work)
        for task in ("fracture-ct", "lumbosacral-ct"):
            for workers in (1, 2):
                rate, per_core = ct_rate(task, args.ct, work, workers)
                print(f"{task}, {workers} process(es): {rate:.2f} volumes/s (256x256x200 equivalents); target "
                      f"{CT_TARGET:.0f}/s -> ratio {rate / CT_TARGET:.2f}; noise+write floor {floor:.2f}/s -> "
                      f"{rate / floor:.2f} of the floor; {per_core:.2f} per CPU-second (x2 cores -> ratio "
                      f"{2 * per_core / CT_TARGET:.2f})")
        for task in ("aasce-cobb", "fracture-ct"):
            few, many = peak_memory(task, 2, work), peak_memory(task, 6, work)
            print(f"{task}: peak traced memory {few:.0f} MiB for 2 cases, {many:.0f} MiB for 6 -> ratio "
                  f"{many / few:.2f} (bounded: about 1)")


if __name__ == "__main__":
    main()
