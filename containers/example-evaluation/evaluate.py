"""Example evaluation for a toy task, "spine length": participants predict the length of the spine in mm per case.

The contract (docs/evaluation.md): /input/predictions.json lists the prediction files (here one CSV,
`case_id,length_mm`), the ground truth is /opt/ml/input/data/ground_truth/lengths.csv (`case_id,length_mm`),
and /output/metrics.json receives

    {"case": {case_id: {"abs_error": |p - t|, "rel_error": |p - t| / t}},
     "aggregates": {"abs_error": mean, "rel_error": mean, "within_10mm": share of cases with |p - t| <= 10}}

A case the participant did not predict, or predicted twice, or a value that is not a number, makes the evaluation
fail with a message on stderr and exit status 2 (the platform shows the organizers the log, not the participant).
"""

import csv
import json
import math
import sys
from pathlib import Path

PREDICTIONS_JSON = Path("/input/predictions.json")
GROUND_TRUTH = Path("/opt/ml/input/data/ground_truth/lengths.csv")
METRICS = Path("/output/metrics.json")
TOLERANCE_MM = 10.0


class Invalid(Exception):
    pass


def read_lengths(path: Path, what: str) -> dict[str, float]:
    lengths: dict[str, float] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            case_id, raw = (row.get("case_id") or "").strip(), (row.get("length_mm") or "").strip()
            if case_id in lengths:
                raise Invalid(f"{what}: case {case_id!r} appears twice")
            try:
                value = float(raw)
            except ValueError:
                raise Invalid(f"{what}: case {case_id!r} has length_mm {raw[:20]!r}, not a number") from None
            if not math.isfinite(value):
                raise Invalid(f"{what}: case {case_id!r} has a length that is not finite")
            lengths[case_id] = value
    return lengths


def predictions_csv() -> Path:
    """The CSV file predictions.json names (grand-challenge style: outputs[].file)."""
    for entry in json.loads(PREDICTIONS_JSON.read_text(encoding="utf-8")):
        for output in entry.get("outputs", []):
            if str(output.get("file", "")).endswith(".csv"):
                return Path(output["file"])
    raise Invalid("predictions.json names no CSV file")


def evaluate() -> dict:
    truth = read_lengths(GROUND_TRUTH, "ground truth")
    predicted = read_lengths(predictions_csv(), "predictions")
    missing, unknown = sorted(set(truth) - set(predicted)), sorted(set(predicted) - set(truth))
    if missing or unknown:
        raise Invalid(f"predictions: {len(missing)} cases missing, {len(unknown)} unknown cases")
    cases = {}
    for case_id, length in sorted(truth.items()):
        error = abs(predicted[case_id] - length)
        cases[case_id] = {"abs_error": error, "rel_error": error / length}
    count = len(cases)
    return {
        "case": cases,
        "aggregates": {
            "abs_error": math.fsum(values["abs_error"] for values in cases.values()) / count,
            "rel_error": math.fsum(values["rel_error"] for values in cases.values()) / count,
            "within_10mm": sum(values["abs_error"] <= TOLERANCE_MM for values in cases.values()) / count,
        },
    }


def main() -> int:
    try:
        metrics = evaluate()
    except Invalid as problem:
        print(f"evaluation failed: {problem}", file=sys.stderr)
        return 2
    METRICS.write_text(json.dumps(metrics, indent=2))
    print(f"{len(metrics['case'])} cases: abs_error = {metrics['aggregates']['abs_error']:.3f} mm")
    return 0


if __name__ == "__main__":
    sys.exit(main())
