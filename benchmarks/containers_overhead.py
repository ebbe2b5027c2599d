"""Overhead of SpineBench's sandboxed runner over a bare `docker run --rm` of the same image, per case, and the
runner's throughput (jobs per minute) on small AASCE cases. Both are measured in the same run, alternating case by
case so that machine load affects both alike. Target: ratio <= 1.3.

    .venv/bin/python benchmarks/containers_overhead.py [--cases 50] [--image spinebench/example-algorithm:latest]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from spinebench.algorithms import runner  # noqa: E402


def write_case(folder: Path, *, seed: int) -> None:
    """A small radiograph-like image with a bright, sinusoidally curved spine."""
    rng = np.random.default_rng(seed)
    height, width = 256, 128
    rows, columns = np.arange(height)[:, None], np.arange(width)[None, :]
    centre = width / 2 + rng.uniform(5, 20) * np.sin(2 * np.pi * rows / height)
    image = 40 + 150 * np.exp(-(((columns - centre) / 8) ** 2)) + rng.normal(0, 10, (height, width))
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "image.png")


def bare_run(image: str, input_dir: Path, output_dir: Path) -> float:
    output_dir.mkdir(parents=True, exist_ok=True)
    output_dir.chmod(0o777)  # the image runs as uid 1000
    started = time.perf_counter()
    subprocess.run(["docker", "run", "--rm", "-v", f"{input_dir}:/input:ro", "-v", f"{output_dir}:/output", image],
                   check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    assert (output_dir / "angles.json").is_file(), "the bare run wrote no output"
    return elapsed


def runner_run(client, image: str, input_dir: Path, output_dir: Path, limits: runner.Limits) -> float:
    started = time.perf_counter()
    result = runner.run_algorithm(client=client, image=image, input_dir=input_dir, collect_to=output_dir,
                                  limits=limits, allowed_names=("angles.json", "landmarks.json"))
    elapsed = time.perf_counter() - started
    assert result.succeeded, result.reason
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--image", default="spinebench/example-algorithm:latest")
    args = parser.parse_args(argv)
    client = runner.docker_client()
    limits = runner.Limits(memory_mb=512, cpus=1.0, pids=64, wall_clock_s=60, output_mb=16, tmp_mb=16)
    with tempfile.TemporaryDirectory(prefix="containers-overhead-") as tmp:
        root = Path(tmp)
        for index in range(args.cases):
            write_case(root / "inputs" / f"case_{index:03d}", seed=index)
        bare_run(args.image, root / "inputs" / "case_000", root / "warmup")  # page cache, image layers
        bare, sandboxed = [], []
        runner_started = None
        runner_total = 0.0
        for index in tqdm(range(args.cases), desc="cases", unit="case"):
            case = root / "inputs" / f"case_{index:03d}"
            bare.append(bare_run(args.image, case, root / "bare" / case.name))
            runner_started = time.perf_counter()
            sandboxed.append(runner_run(client, args.image, case, root / "runner" / case.name, limits))
            runner_total += time.perf_counter() - runner_started
    bare_median, runner_median = statistics.median(bare), statistics.median(sandboxed)
    print(f"cases: {args.cases}  image: {args.image}")
    print(f"bare docker run --rm : median {bare_median:.3f} s/case  mean {statistics.mean(bare):.3f} s/case")
    print(f"spinebench runner    : median {runner_median:.3f} s/case  mean {statistics.mean(sandboxed):.3f} s/case")
    print(f"overhead ratio (median runner / median bare): {runner_median / bare_median:.2f}  (target <= 1.3)")
    print(f"overhead ratio (mean): {statistics.mean(sandboxed) / statistics.mean(bare):.2f}")
    print(f"runner throughput: {60.0 * args.cases / runner_total:.1f} jobs/minute (one job at a time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
