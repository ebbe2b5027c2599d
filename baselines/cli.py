"""Command line for the baselines: ``list``, ``train`` and ``predict``.

``spinebench baselines list|train|predict ...`` (the platform's CLI calls ``register(subparsers)`` and adds
``baselines run`` to the sub-subparsers it returns), or standalone ``python -m baselines.cli list|train|predict``:

    baselines list [--task TASK]
    baselines preset TASK METHOD PRESET                   (every setting of the method variant's preset, checked)
    baselines train TASK METHOD --preset tiny|standard|paper --data DIR --out CKPT [--device auto|cpu|cuda]
    baselines predict TASK METHOD --checkpoint CKPT --data DIR --out PATH [--device auto|cpu|cuda]
    baselines image CKPT --tag TAG [--save ARCHIVE]      (baselines.container: an algorithm image, Docker)

Errors (unknown task/method/preset, bad dataset, wrong checkpoint) print one line to stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys

from baselines import api
from baselines.container import add_image_command
from baselines.data import AasceDataError
from baselines.presets import summarise
from baselines.registry import METHODS, UnknownMethodError, get_method
from evaluators.layout import LayoutError

USER_ERRORS = (UnknownMethodError, api.CheckpointError, AasceDataError, LayoutError, FileNotFoundError, ValueError)


def _list(args) -> int:
    tasks = [args.task] if args.task else sorted(METHODS)
    for task_id in tasks:
        if task_id not in METHODS:
            raise UnknownMethodError(
                f"no baselines for task {task_id!r}; tasks with baselines: {', '.join(sorted(METHODS))}"
            )
        for name, spec in METHODS[task_id].items():
            variant = ", ".join(f"{key}={value}" for key, value in spec.overrides.items())
            print(f"{task_id}\t{name}\t{spec.module}" + (f"\t{variant}" if variant else ""))
    return 0


def _preset(args) -> int:
    spec = get_method(args.task, args.method)
    module = spec.load()
    config = api.build_config(module, args.preset, spec.overrides)
    variant = ", ".join(f"{key}={value!r}" for key, value in spec.overrides.items())
    print(
        f"{args.task} {args.method}: preset {args.preset} of {module.__name__}"
        + (f" with {variant}" if variant else "")
    )
    print("\n".join(summarise(config, indent="  ")))
    return 0


def _train(args) -> int:
    path = api.train(
        args.task,
        args.method,
        preset=args.preset,
        data_dir=args.data,
        out=args.out,
        device=args.device,
        progress=not args.quiet,
    )
    print(path)
    return 0


def _predict(args) -> int:
    path = api.predict(
        args.task,
        args.method,
        checkpoint=args.checkpoint,
        data_dir=args.data,
        out=args.out,
        device=args.device,
        progress=not args.quiet,
    )
    print(path)
    return 0


def _guarded(command):
    def run(args) -> int:
        try:
            return command(args)
        except USER_ERRORS as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return run


def add_commands(subparsers) -> None:
    """Add ``list``, ``train`` and ``predict`` to an argparse subparsers object."""
    listing = subparsers.add_parser("list", help="list the baseline methods per task")
    listing.add_argument("--task", help="only this task id")
    listing.set_defaults(func=_guarded(_list))
    preset = subparsers.add_parser("preset", help="print (and check) every setting of a method's preset")
    preset.add_argument("task", help="task id, e.g. aasce-cobb")
    preset.add_argument("method", help="method name (see `baselines list`)")
    preset.add_argument("preset", help="tiny | standard | paper")
    preset.set_defaults(func=_guarded(_preset))
    for name, command, help_text in (
        ("train", _train, "train a baseline"),
        ("predict", _predict, "predict with a trained baseline"),
    ):
        parser = subparsers.add_parser(name, help=help_text)
        parser.add_argument("task", help="task id, e.g. aasce-cobb")
        parser.add_argument("method", help="method name (see `baselines list`)")
        if name == "train":
            parser.add_argument("--preset", default="standard", help="tiny | standard | paper (default standard)")
        else:
            parser.add_argument("--checkpoint", required=True, help="checkpoint written by `baselines train`")
        parser.add_argument("--data", required=True, help="SpineBench dataset folder")
        parser.add_argument(
            "--out", required=True, help="checkpoint file (train) or predictions folder / .csv (predict)"
        )
        parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda[:N]")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        parser.set_defaults(func=_guarded(command))
    add_image_command(subparsers, _guarded)  # `image CKPT --tag TAG`: a trained baseline as an algorithm image


def register(subparsers):
    """Add ``baselines`` with its subcommands; returns the baselines sub-subparsers (the platform adds ``run``)."""
    parser = subparsers.add_parser("baselines", help="train and run the published methods")
    commands = parser.add_subparsers(dest="baselines_command", required=True, metavar="COMMAND")
    add_commands(commands)
    return commands


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m baselines.cli", description="SpineBench baselines")
    add_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
