"""GPU check of every method's ``paper`` preset: a short fixed training (does the loss fall?), prediction
throughput and peak GPU memory, on phantoms this script generates itself (no files needed).

    python benchmarks/gpu_check.py --out gpu_check.json [--device cuda] [--methods a,b] [--steps 20]
    python benchmarks/gpu_check.py --device cpu --tiny --methods top-down --out /tmp/check.json   # the CPU test

One registered variant stands for each of the fourteen methods of the proceedings (``METHODS`` below). Each trains
through ``baselines.api.train`` with the ``paper`` preset (``--tiny``: the ``tiny`` preset, for testing the script on
a CPU), its training length capped by ``caps(steps)``: every optimiser-step budget set to ``steps`` and every epoch
count set so that the run makes about ``steps`` optimiser steps on the generated training set, ensembles and
cross-validation folds cut to what one short run needs. Everything else, network sizes, input sizes and batch sizes
included, stays as the paper preset sets it, so the peak memory is the paper configuration's. Then
``baselines.api.predict`` predicts the generated test cases (throughput = test cases / prediction seconds, the model
loading included; the first case includes CUDA warm-up). Per method it records the first and last training loss
(``falls``: the mean of the last three steps is below the mean of the first three; the GAN of Liu et al. trains a
segmenter and a discriminator against each other, where a falling total is not guaranteed), train and predict
seconds, cases/s, peak GPU memory of training and of prediction (``torch.cuda.max_memory_allocated``, GiB) and the
run report's fallback share (``baselines.report``). A method that fails is recorded with its error and the others
still run; one that runs past ``--method-timeout`` seconds (phantom generation included) is stopped and recorded as
timed out, and once ``--budget`` seconds have passed the remaining methods are recorded as skipped, so the script
ends inside the device time it was given. The table goes to stdout, everything to ``--out`` (JSON), written after
every method so a run cut short
keeps what it measured.

Training seeds every generator and turns on torch's deterministic algorithms and cuDNN's deterministic mode
(``baselines.nn.training.seed_everything``); those settings stay on for the prediction that follows, so the
throughput is that of a reproducible run, which can be slower than torch's defaults.

The phantoms are the reduced-size ones (``small=True``): the CT presets resample to their own voxel spacing and the
AASCE presets letterbox to their own input size, so network inputs have the paper's sizes; only the reading and
resizing of the (smaller) test images is cheaper than for full-size images. Budget: fourteen methods in about 8
minutes on one H100 with the default 20 steps (most of it phantom generation and the 3D networks); with the defaults
(``--budget 420 --method-timeout 150``) the script ends within about 9.5 minutes whatever happens, inside a
10-minute device command:

    timeout 590 python benchmarks/gpu_check.py --out $OUT/gpu_check.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import phantoms  # noqa: E402
from baselines import api  # noqa: E402
from baselines.report import read_report, report_path  # noqa: E402

#: method -> task, one registered variant per method of the proceedings (the paper's main configuration).
METHODS = {
    "keypoint-fusion": "aasce-cobb",
    "seg4reg": "aasce-cobb",
    "top-down": "aasce-cobb",
    "detector-corners": "aasce-cobb",
    "centreline-cascade": "aasce-cobb",
    "rotated-proposals": "aasce-cobb",
    "coarse-to-fine": "aasce-cobb",
    "scg-net": "aasce-cobb",
    "multi-task": "aasce-cobb",
    "dual-pathway-3d": "fracture-ct",
    "conditioned-vae": "fracture-ct",
    "unet3d-str": "metastatic-body-ct",
    "unet-residual-corrector": "vertebra-labelling-xr",
    "semi-cgan": "lumbosacral-ct",
}
#: task -> (training cases, test cases) generated for the check
CASES = {
    "aasce-cobb": (8, 4),
    "fracture-ct": (4, 2),
    "metastatic-body-ct": (3, 2),
    "vertebra-labelling-xr": (6, 4),
    "lumbosacral-ct": (3, 2),
}
AASCE_BATCH = 4  # the batch size of the epoch-based AASCE paper presets (multi-task and SCG-Net: 8)


def caps(method: str, *, steps: int, train_cases: int) -> dict[str, Any]:
    """Config overrides that cut ``method``'s paper preset to about ``steps`` optimiser steps per stage."""
    epochs = max(2, math.ceil(steps / math.ceil(train_cases / AASCE_BATCH)))
    table: dict[str, dict[str, Any]] = {
        "keypoint-fusion": {"retina_steps": steps, "hrnet_steps": steps, "sb1_steps": steps, "sb2_steps": steps},
        "seg4reg": {"seg_steps": steps, "reg_steps": steps},
        "top-down": {"steps": steps},
        "detector-corners": {"detector_steps": steps, "corner_steps": steps},
        "centreline-cascade": {"epochs": epochs, "ensembles": (1, 1)},
        "rotated-proposals": {"epochs": epochs},
        "coarse-to-fine": {"global_epochs": epochs, "detector_epochs": epochs, "local_epochs": epochs},
        "scg-net": {"seg_epochs": 2 * epochs, "reg_epochs": 2 * epochs},
        "multi-task": {"epochs": 2 * epochs},
        "dual-pathway-3d": {"epochs": 1, "segments_per_epoch": steps * 10},
        "conditioned-vae": {
            "recon_epochs": max(2, steps // 3),
            "kl_epochs": max(2, steps // 3),
            "classifier_epochs": max(2, steps // 3),
            "kl_anneal_epochs": 1,
        },
        "unet3d-str": {"epochs": max(2, math.ceil(steps / CASES["metastatic-body-ct"][0]))},
        "unet-residual-corrector": {"epochs": 0, "iterations": steps},
        "semi-cgan": {"iterations": steps},
    }
    return table[method]


def generate(task: str, root: Path, *, workers: int) -> tuple[Path, Path]:
    n_train, n_test = CASES[task]
    folder = root / task
    train = phantoms.generate(
        task, out=folder / "train", cases=n_train, seed=1, small=True, progress=False, workers=workers
    )
    test = phantoms.generate(
        task, out=folder / "test", cases=n_test, seed=2, domain="test", small=True, progress=False, workers=workers
    )
    return Path(train), Path(test)


def _flat_losses(checkpoint: Path) -> list[float]:
    """The checkpoint's loss history as one list of finite floats (a tensor, or nested lists, flattened in order)."""

    def flatten(value):
        if torch.is_tensor(value):
            value = value.tolist()
        if isinstance(value, (list, tuple)):
            return [item for inner in value for item in flatten(inner)]
        return [float(value)]

    values = flatten(torch.load(checkpoint, map_location="cpu", weights_only=True)["losses"])
    return [v for v in values if math.isfinite(v)]


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def check_method(
    method: str, *, task: str, preset: str, steps: int, data: tuple[Path, Path], work: Path, device: torch.device
) -> dict:
    train_dir, test_dir = data
    overrides = caps(method, steps=steps, train_cases=CASES[task][0]) if preset == "paper" else {}
    _reset_peak(device)
    start = time.perf_counter()
    checkpoint = api.train(
        task,
        method,
        preset=preset,
        data_dir=train_dir,
        out=work / f"{method}.pt",
        device=device,
        progress=False,
        overrides=overrides,
    )
    train_s = time.perf_counter() - start
    train_peak = _peak_gib(device)
    losses = _flat_losses(checkpoint)
    window = max(1, min(3, len(losses) // 2))
    _reset_peak(device)
    start = time.perf_counter()
    out = work / f"{method}-predictions{'.csv' if task == 'aasce-cobb' else ''}"
    predictions = api.predict(
        task, method, checkpoint=checkpoint, data_dir=test_dir, out=out, device=device, progress=False
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    predict_s = time.perf_counter() - start
    report = read_report(report_path(predictions))
    return {
        "method": method,
        "task": task,
        "preset": preset,
        "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()},
        "steps_recorded": len(losses),
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "falls": bool(losses) and float(np.mean(losses[-window:])) < float(np.mean(losses[:window])),
        "train_s": train_s,
        "predict_s": predict_s,
        "test_cases": len(report.cases),
        "cases_per_s": len(report.cases) / predict_s if predict_s > 0 else None,
        "train_peak_gib": train_peak,
        "predict_peak_gib": _peak_gib(device),
        "fallback_share": report.fallback_share,
        "degenerate": report.degenerate,
        "error": None,
    }


class MethodTimeout(Exception):
    """A method ran past ``--method-timeout``."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise ``MethodTimeout`` in the main thread after ``seconds`` (SIGALRM; 0 = no limit)."""
    if seconds <= 0:
        yield
        return

    def expire(signum, frame):
        raise MethodTimeout(f"stopped after {seconds:g} s (--method-timeout)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fmt(value, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: list[dict]) -> str:
    header = [
        "method",
        "loss first",
        "loss last",
        "falls",
        "train s",
        "predict s",
        "cases/s",
        "train GiB",
        "predict GiB",
        "fallback",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    for row in rows:
        if row.get("error"):
            lines.append(f"| {row['method']} | failed: {row['error']} |" + " |" * (len(header) - 2))
            continue
        lines.append(
            "| "
            + " | ".join(
                [
                    row["method"],
                    _fmt(row["loss_first"], 4),
                    _fmt(row["loss_last"], 4),
                    _fmt(row["falls"]),
                    _fmt(row["train_s"], 1),
                    _fmt(row["predict_s"], 1),
                    _fmt(row["cases_per_s"], 2),
                    _fmt(row["train_peak_gib"]),
                    _fmt(row["predict_peak_gib"]),
                    _fmt(row["fallback_share"]),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def environment(device: torch.device) -> dict:
    info: dict[str, object] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        info |= {"gpu": properties.name, "gpu_memory_gib": properties.total_memory / 2**30, "cuda": torch.version.cuda}
    return info


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated, from: " + ", ".join(METHODS))
    parser.add_argument("--steps", type=int, default=20, help="optimiser steps per training stage (paper preset)")
    parser.add_argument(
        "--tiny", action="store_true", help="the tiny preset instead of paper (tests the script on CPU)"
    )
    parser.add_argument("--work", type=Path, default=None, help="folder for phantoms and checkpoints (default: temp)")
    parser.add_argument(
        "--method-timeout",
        type=float,
        default=150.0,
        help="seconds one method may take, data generation included (0: no limit)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=420.0,
        help="seconds after which the remaining methods are skipped (0: no limit)",
    )
    parser.add_argument(
        "--workers", type=int, default=max(1, min(8, (os.cpu_count() or 2) // 2)), help="processes generating phantoms"
    )
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown method(s) {', '.join(unknown)}; known: {', '.join(METHODS)}")
    device = api.resolve_device(args.device)
    preset = "tiny" if args.tiny else "paper"
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(device), "preset": preset, "steps": args.steps, "rows": [], "generation_s": {}}
    began = time.perf_counter()
    datasets: dict[str, tuple[Path, Path]] = {}
    for method in methods:
        task = METHODS[method]
        print(f"== {method} ({task}, preset {preset})", flush=True)
        try:
            if args.budget and time.perf_counter() - began > args.budget:
                raise MethodTimeout(f"skipped: past --budget {args.budget:g} s")
            with time_limit(args.method_timeout):
                if task not in datasets:
                    start = time.perf_counter()
                    datasets[task] = generate(task, work / "data", workers=args.workers)
                    result["generation_s"][task] = time.perf_counter() - start
                row = check_method(
                    method,
                    task=task,
                    preset=preset,
                    steps=args.steps,
                    data=datasets[task],
                    work=work / "runs",
                    device=device,
                )
        except Exception as error:  # one failing method must not stop the others
            if not isinstance(error, MethodTimeout):
                traceback.print_exc()
            row = {"method": method, "task": task, "preset": preset, "error": f"{type(error).__name__}: {error}"[:300]}
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
        result["total_s"] = time.perf_counter() - began
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print(f"\n{result['environment']}\n")
    print(table(result["rows"]))
    print(f"\ntotal {result['total_s']:.0f} s; results in {args.out}")
    return 0 if all(not row.get("error") for row in result["rows"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
