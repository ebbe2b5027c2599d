"""Command line: ``python -m evaluators.cli evaluate TASK_ID --predictions PATH --ground-truth PATH --output FILE``.

The same subcommand is mounted into the ``spinebench`` command through `register`. Any evaluation problem (bad
predictions, missing ground truth, unknown task) prints one line on stderr and exits with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evaluators.errors import EvaluationError
from evaluators.tasks import TASKS, evaluate

EXIT_INVALID = 2


def _evaluate_command(args: argparse.Namespace) -> int:
    try:
        result = evaluate(
            args.task_id,
            predictions=args.predictions,
            ground_truth=args.ground_truth,
            progress=not args.quiet,
        )
    except (EvaluationError, KeyError, FileNotFoundError, PermissionError) as problem:
        message = problem.args[0] if isinstance(problem, KeyError) and problem.args else problem
        print(f"error: {message}", file=sys.stderr)
        return EXIT_INVALID
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    if not args.quiet:
        primary = TASKS[args.task_id].primary
        print(f"{args.task_id}: {primary} = {result['aggregates'].get(primary)} -> {output}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the `evaluate` subcommand to an argparse subparsers object."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "evaluate",
        help="score predictions against ground truth and write metrics.json",
        description="Score predictions (a phase CSV or a folder of case folders) against a dataset folder or its "
        "ground_truth/ folder; writes {\"case\": ..., \"aggregates\": ...} as JSON.",
    )
    parser.add_argument("task_id", choices=sorted(TASKS), help="task id")
    parser.add_argument("--predictions", required=True, help="predictions CSV file or folder PRED/<case_id>/...")
    parser.add_argument("--ground-truth", required=True, help="dataset folder or its ground_truth/ folder")
    parser.add_argument("--output", default="metrics.json", help="where to write metrics.json (default: %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or summary line")
    parser.set_defaults(func=_evaluate_command)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluators.cli", description="SpineBench evaluators")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
