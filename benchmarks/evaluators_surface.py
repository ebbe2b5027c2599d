"""Benchmark: Dice + ASSD + HD95 per label against MedPy 0.5.2 and DeepMind `surface-distance`, edt vs scipy for the
distance computation (KD-tree vs edt vs scipy maps), and peak memory on a 512x512x300 volume with 25 labels.

Targets (issue 3): 256^3, 3 labels, spacing (1.0, 0.8, 0.8): >= 20x faster than MedPy `assd` + `hd95` per label,
>= 3x faster than DeepMind `surface-distance`, with MedPy-equal values; 512x512x300 with 25 labels: peak memory
<= 3x the two input volumes' bytes. Every ratio is measured in this run.

    nice -n 10 .venv/bin/python benchmarks/evaluators_surface.py [--medpy-labels 3] [--skip-memory]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

from evaluators import metrics  # noqa: E402
from evaluators.metrics import surface  # noqa: E402

SPACING = (1.0, 0.8, 0.8)


def vertebra_like(shape, centre, radii, rng):
    """A lumpy ellipsoid (vertebral body-sized) written only inside its bounding box."""
    low = [max(0, int(c - r - 2)) for c, r in zip(centre, radii)]
    high = [min(s, int(c + r + 3)) for s, c, r in zip(shape, centre, radii)]
    grid = np.ogrid[tuple(slice(lo, hi) for lo, hi in zip(low, high))]
    distance = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii))
    lumps = ndimage.gaussian_filter(rng.normal(0, 1, distance.shape), 3) * 2.0
    return tuple(slice(lo, hi) for lo, hi in zip(low, high)), distance + lumps * 0.3 <= 1.0


def label_volumes(shape, n_labels, seed=0):
    """Reference and prediction label maps: n_labels blobs stacked along axis 0, the prediction shifted and
    resized a little, so surfaces differ by a few voxels."""
    rng = np.random.default_rng(seed)
    reference = np.zeros(shape, np.uint8)
    prediction = np.zeros(shape, np.uint8)
    pitch = shape[0] / n_labels
    for label in range(1, n_labels + 1):
        centre = np.array([pitch * (label - 0.5), shape[1] * 0.5, shape[2] * 0.5])
        radii = np.array([pitch * 0.45, shape[1] * 0.18, shape[2] * 0.2])
        for target, jitter in ((reference, 0.0), (prediction, 1.0)):
            box, mask = vertebra_like(
                shape, centre + jitter * rng.normal(0, 1.5, 3), radii * (1 + jitter * rng.normal(0, 0.05, 3)), rng
            )
            target[box][mask] = label
    return reference, prediction


def best_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return min(times), result


def ours(reference, prediction, labels):
    distances = metrics.surface_distances(reference, prediction, spacing=SPACING, labels=labels)
    return {label: (d.dice, d.assd, d.hd95) for label, d in distances.items()}


def medpy_per_label(reference, prediction, labels):
    from medpy.metric.binary import assd, dc, hd95

    result = {}
    for label in labels:
        r, p = reference == label, prediction == label
        result[label] = (dc(p, r), assd(p, r, voxelspacing=SPACING), hd95(p, r, voxelspacing=SPACING))
    return result


def deepmind_per_label(reference, prediction, labels):
    import surface_distance

    result = {}
    for label in labels:
        r, p = reference == label, prediction == label
        distances = surface_distance.compute_surface_distances(r, p, SPACING)
        result[label] = (
            surface_distance.compute_dice_coefficient(r, p),
            np.mean(surface_distance.compute_average_surface_distance(distances)),
            surface_distance.compute_robust_hausdorff(distances, 95),
        )
    return result


def map_based(distance_map):
    """`directed_distances` read from Euclidean distance maps of the two surfaces (the classic way)."""

    def directed(reference_surface, prediction_surface, spacing):
        return (
            distance_map(prediction_surface, spacing)[reference_surface].astype(np.float64),
            distance_map(reference_surface, spacing)[prediction_surface].astype(np.float64),
        )

    return directed


def edt_map(surface_mask, spacing):
    import edt

    return edt.edt(np.ascontiguousarray(~surface_mask), anisotropy=spacing, black_border=False, parallel=1)


def scipy_map(surface_mask, spacing):
    return ndimage.distance_transform_edt(~surface_mask, sampling=spacing)


def speed(args):
    shape = (256, 256, 256)
    labels = [1, 2, 3]
    reference, prediction = label_volumes(shape, len(labels))
    print(f"volume {shape}, labels {labels}, spacing {SPACING}")
    print("label voxels:", {label: int(np.count_nonzero(reference == label)) for label in labels})

    ours_time, ours_values = best_time(lambda: ours(reference, prediction, labels), 3)
    print(f"ours (cKDTree)         {ours_time:8.3f} s")
    variant_values = []
    nearest_neighbours = surface.directed_distances
    for name, distance_map in (("edt package map", edt_map), ("scipy EDT map", scipy_map)):
        surface.directed_distances = map_based(distance_map)
        try:
            variant_time, values = best_time(lambda: ours(reference, prediction, labels), 2)
        finally:
            surface.directed_distances = nearest_neighbours
        variant_values.append(values)
        print(f"ours with {name:15s}{variant_time:7.3f} s   ({variant_time / ours_time:4.2f}x the cKDTree time)")

    medpy_labels = labels[: args.medpy_labels]
    medpy_time, medpy_values = best_time(lambda: medpy_per_label(reference, prediction, medpy_labels), 1)
    medpy_full = medpy_time * len(labels) / len(medpy_labels)
    note = (
        ""
        if len(medpy_labels) == len(labels)
        else f" (timed on {len(medpy_labels)} label(s), scaled x{len(labels) / len(medpy_labels):g})"
    )
    print(f"MedPy dc+assd+hd95     {medpy_full:8.3f} s{note}")
    worst = 0.0
    for label in medpy_labels:
        for mine, theirs in zip(ours_values[label], medpy_values[label]):
            worst = max(worst, abs(mine - theirs) / abs(theirs))
        for values in variant_values:
            for mine, theirs in zip(ours_values[label], values[label]):
                worst = max(worst, abs(mine - theirs) / abs(theirs))
    print(f"max relative difference to MedPy and between the three distance methods: {worst:.2e}")

    deepmind_time, _ = best_time(lambda: deepmind_per_label(reference, prediction, labels), 1)
    print(f"DeepMind surface-dist. {deepmind_time:8.3f} s")
    print(f"RATIO vs MedPy:    {medpy_full / ours_time:7.1f}x faster (target >= 20x)")
    print(f"RATIO vs DeepMind: {deepmind_time / ours_time:7.1f}x faster (target >= 3x)")


def _vm_kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child():
    """Run in a fresh process: build the 512x512x300, 25-label inputs, reset the peak-RSS mark, score, report."""
    baseline = _vm_kib("VmRSS")
    reference, prediction = label_volumes((300, 512, 512), 25, seed=1)
    input_bytes = reference.nbytes + prediction.nbytes
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM (peak RSS) to the current RSS
    labels = list(range(1, 26))
    start = time.perf_counter()
    ours(reference, prediction, labels)
    elapsed = time.perf_counter() - start
    peak = _vm_kib("VmHWM")
    peak_bytes = (peak - baseline) * 1024
    print(f"volume (300, 512, 512) x2 uint8 = {input_bytes / 2**20:.0f} MiB; 25 labels scored in {elapsed:.1f} s")
    print(f"peak RSS above interpreter baseline: {peak_bytes / 2**20:.0f} MiB")
    print(f"RATIO peak memory / input bytes: {peak_bytes / input_bytes:5.2f} (target <= 3)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--medpy-labels", type=int, default=3, help="labels to time MedPy on (scaled to 3)")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child()
        return
    speed(args)
    if not args.skip_memory:
        subprocess.run([sys.executable, __file__, "--memory-child"], check=True)


if __name__ == "__main__":
    main()
