"""Run the CT/XR paper baselines and write their tables into baselines/RESULTS.md.

Each section module (``benchmarks/ctxr_<name>.py``) exposes ``run(*, data_root, device, preset) -> str`` and returns a
markdown section that mirrors its paper's table, measured in this run beside the paper's figures and a trivial
reference row. Sections: metastatic (Klein et al.), labelling (Bayat et al.), lumbosacral (Liu et al.) and, when
``benchmarks/ctxr_fracture.py`` exists, fracture (the two fracture papers). The sections are written between
``<!-- ctxr:start -->`` and ``<!-- ctxr:end -->`` in baselines/RESULTS.md (one ``<!-- ctxr:NAME:start/end -->``
block per section, so ``--only`` refreshes just those); everything else in the file is kept.

    nice -n 10 .venv/bin/python benchmarks/baselines_ct_xr.py --preset standard --device auto
    .venv/bin/python benchmarks/baselines_ct_xr.py --preset tiny --only metastatic,labelling --no-write
    .venv/bin/python benchmarks/baselines_ct_xr.py --only none --spread metastatic-body-ct:unet3d-str

``--spread TASK:METHOD`` adds the ``spread`` section (``ctxr_spread``): that one method trained with each of
``--spread-seeds`` (default 0,1,2), every aggregate per seed with its mean ± sd, since three seeds of every CT
method would cost hours.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

SECTIONS = ("metastatic", "labelling", "lumbosacral", "fracture")
ORDER = (*SECTIONS, "spread", "throughput")
START, END = "<!-- ctxr:start -->", "<!-- ctxr:end -->"


def _block(name: str, text: str) -> str:
    return f"<!-- ctxr:{name}:start -->\n{text.rstrip()}\n<!-- ctxr:{name}:end -->"


def merge_results(existing: str, sections: dict[str, str]) -> str:
    """Put ``sections`` into the ctxr block of ``existing`` (creating the block at the end if missing), replacing
    those sections' previous text and keeping every other section and everything outside the block."""
    if START in existing and END in existing:
        before, rest = existing.split(START, 1)
        inner, after = rest.split(END, 1)
    else:
        before, inner, after = existing.rstrip() + ("\n\n" if existing.strip() else ""), "", "\n"
    blocks = {
        match.group(1): match.group(0)
        for match in re.finditer(r"<!-- ctxr:(\w+):start -->.*?<!-- ctxr:\1:end -->", inner, flags=re.S)
    }
    for name, text in sections.items():
        blocks[name] = _block(name, text)
    ordered = [blocks[name] for name in ORDER if name in blocks]
    ordered += [text for name, text in blocks.items() if name not in ORDER]
    header = "## CT and radiograph papers (benchmarks/baselines_ct_xr.py)"
    body = "\n\n".join([header, *ordered])
    return f"{before}{START}\n{body}\n{END}{after}"


def throughput(*, device: str, seconds: float) -> str:
    """Training and inference volumes per second of the metastatic 3D U-Net at the ``paper`` preset (6 levels,
    32 base filters, 128×128×64 patches, batch 1, Dice loss, Adam; mixed precision on CUDA) on random volumes, so
    only the network is timed; each phase runs for ``seconds`` after a warm-up."""
    import torch

    from baselines.metastatic import unet3d
    from baselines.nn.training import GradScalerStep, autocast
    from baselines.nn.volumes import soft_dice_loss

    config = unet3d.PRESETS["paper"]
    target = torch.device(device)
    net = unet3d.build_network(config).to(target)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.learning_rate)
    stepper = GradScalerStep(target)
    image = torch.randn(config.batch_size, 1, *config.input_size, device=target)
    mask = (torch.rand(config.batch_size, 1, *config.input_size, device=target) > 0.5).float()

    def timed(step) -> float:
        for _ in range(3):
            step()
        if target.type == "cuda":
            torch.cuda.synchronize()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            step()
            count += 1
        if target.type == "cuda":
            torch.cuda.synchronize()
        return count * config.batch_size / (time.perf_counter() - start)

    def train_step():
        with autocast(target):
            logits = net(image)
        stepper.step(soft_dice_loss(torch.sigmoid(logits.float()), mask), optimiser)

    def infer_step():
        with torch.no_grad(), autocast(target):
            net(image)

    net.train()
    training = timed(train_step)
    net.eval()
    inference = timed(infer_step)
    name = torch.cuda.get_device_name(target) if target.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    return "\n".join(
        [
            "### Throughput: metastatic 3D U-Net, `paper` preset",
            "",
            f"Device: {name}. 6-level 3D U-Net, 32 base filters ({sum(p.numel() for p in net.parameters()):,} "
            f"parameters), 128×128×64 volumes, batch {config.batch_size}; random inputs, {seconds:.0f} s per phase "
            f"after 3 warm-up steps. The paper reports about 0.4 s per prediction on a Titan Xp (2.5 volumes/s).",
            "",
            f"| Phase | Volumes per second |\n| --- | --- |\n| training (forward + backward + Adam) | "
            f"{training:.1f} |\n| inference | {inference:.1f} |",
            "",
        ]
    )


def available(name: str) -> bool:
    return importlib.util.find_spec(f"ctxr_{name}") is not None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="standard", choices=("tiny", "standard", "paper"))
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections out of {', '.join(SECTIONS)} (none: only --spread/--throughput)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=Path(os.environ.get("TMPDIR", "/tmp")) / "spinebench-ctxr",
        help="where the generated datasets and checkpoints go (reused when present)",
    )
    parser.add_argument("--results", type=Path, default=ROOT / "baselines" / "RESULTS.md")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--no-write", action="store_true", help="print the sections without touching RESULTS.md")
    parser.add_argument(
        "--spread",
        default="",
        metavar="TASK:METHOD",
        help="also train this one method with each of --spread-seeds and report the spread",
    )
    parser.add_argument("--spread-seeds", default="0,1,2", help="training seeds for --spread")
    parser.add_argument(
        "--reuse-checkpoints",
        action="store_true",
        help="predict with the checkpoints an earlier run of the same preset left under --data-root (no training)",
    )
    parser.add_argument(
        "--throughput",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also time the paper-preset metastatic U-Net for SECONDS per phase (0: skip)",
    )
    args = parser.parse_args(argv)

    import torch

    from baselines.api import resolve_device

    torch.set_num_threads(args.threads)
    common: Any = importlib.import_module("ctxr_common")  # a sibling script module, loaded by name
    common.REUSE_CHECKPOINTS = args.reuse_checkpoints
    device = str(resolve_device(args.device))
    wanted = [name.strip() for name in args.only.split(",") if name.strip() and name.strip() != "none"]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; expected {', '.join(SECTIONS)}")
    jobs: list[tuple[str, Callable[[], object] | None]] = [(name, None) for name in wanted]
    if args.spread:
        task, _, method = args.spread.partition(":")
        if not method:
            parser.error("--spread takes TASK:METHOD, e.g. metastatic-body-ct:unet3d-str")
        seeds = tuple(int(s) for s in args.spread_seeds.split(",") if s.strip())
        spread = importlib.import_module("ctxr_spread")
        jobs.append(
            (
                "spread",
                lambda: spread.run(
                    data_root=args.data_root, device=device, preset=args.preset, task=task, method=method, seeds=seeds
                ),
            )
        )
    if args.throughput > 0:
        jobs.append(("throughput", lambda: throughput(device=device, seconds=args.throughput)))
    failed: list[str] = []
    for name, job in jobs:
        if job is None and not available(name):
            print(f"[ctxr] skipping {name}: benchmarks/ctxr_{name}.py is not in this checkout", file=sys.stderr)
            continue
        start = time.perf_counter()
        print(f"[ctxr] {name}: preset {args.preset} on {device} ...", file=sys.stderr, flush=True)
        try:
            if job is None:
                text = importlib.import_module(f"ctxr_{name}").run(
                    data_root=args.data_root, device=device, preset=args.preset
                )
            else:
                text = job()
        except Exception:  # one broken section must not lose the others; RESULTS.md keeps its previous text
            failed.append(name)
            traceback.print_exc()
            print(f"[ctxr] {name} failed; its section was not written", file=sys.stderr, flush=True)
            continue
        text = text.rstrip() + f"\n\n_Section wall time: {time.perf_counter() - start:.0f} s._\n"
        print(text, flush=True)
        if not args.no_write:
            existing = args.results.read_text(encoding="utf-8") if args.results.is_file() else "# Baseline results\n"
            args.results.write_text(merge_results(existing, {name: text}), encoding="utf-8")
    if failed:
        print(f"[ctxr] failed sections: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
