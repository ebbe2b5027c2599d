"""The evaluation container contract (docs/evaluation.md), shared by the platform and the evaluator image. No Django.

An evaluation container (the built-in `spinebench/evaluator` or an organizer's own image) sees:

- `/input/` (read-only): the predictions of one submission. A CSV phase gives `/input/predictions.csv`; a phase of
  case folders and an algorithm phase give `/input/<case_id>/<file>`. Beside them `/input/predictions.json`
  describes them the way grand-challenge.org describes the outputs of algorithm jobs: a list with one entry per
  case (or one entry for a whole-phase CSV), each `{"pk", "case_id", "status": "Succeeded", "inputs": [...],
  "outputs": [{"interface": {"slug", "relative_path"}, "file": "/input/..."}]}`.
- `/opt/ml/input/data/ground_truth/` (read-only): the ground truth folder of the phase's dataset, and
  `/opt/ml/input/data/dataset.json` its manifest (case ids and groups).
- `/output/` (writable, size-capped): the container writes `/output/metrics.json`
  `{"case": {case_id: {metric: number}}, "aggregates": {metric: number}}`.

On a split phase the image runs once per part of the test set and sees only that part's cases (predictions, ground
truth and manifest: `stage_predictions(..., case_ids)`, `stage_ground_truth_part`, `manifest_part`).

`validated_metrics` checks such a document against the phase's declaration (`Declaration`): every declared
per-case metric is a finite number for every case, every declared aggregate is a finite number; the aggregate of a
per-case metric is the mean of its case values (reported or not: a reported value that differs is refused, since
the leaderboard's confidence interval resamples that mean).
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import stat
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from evaluators.tasks import Metric, Task

INPUT_MOUNT = "/input"
OUTPUT_MOUNT = "/output"
DATA_MOUNT = "/opt/ml/input/data"
GROUND_TRUTH_MOUNT = f"{DATA_MOUNT}/ground_truth"
MANIFEST_MOUNT = f"{DATA_MOUNT}/dataset.json"
PREDICTIONS_JSON = "predictions.json"
PREDICTIONS_CSV = "predictions.csv"
METRICS_JSON = "metrics.json"
CUSTOM_TASK = "custom"
METRIC_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
DIRECTIONS = ("higher", "lower")
FORMATS = ("csv", "case-folder")
#: The relative tolerance within which a reported aggregate of a per-case metric must equal the mean of its cases.
MEAN_TOLERANCE = 1e-6


class ContractError(ValueError):
    """metrics.json or a declaration breaks the contract; the message names the key or case at fault."""


@dataclass(frozen=True)
class DeclaredMetric:
    """One metric an evaluation image reports: `per_case` metrics come per case (their leaderboard value is the
    mean over cases, so they get bootstrap confidence intervals); the others are set-level aggregates only."""

    key: str
    label: str
    direction: str
    primary: bool = False
    per_case: bool = False


@dataclass(frozen=True)
class Declaration:
    """What a custom phase's evaluation image produces and what its predictions look like."""

    metrics: tuple[DeclaredMetric, ...]
    predictions_format: str = "csv"  # "csv": one file per phase; "case-folder": /input/<case_id>/<file>
    output_files: tuple[str, ...] = ()  # what an algorithm container of the phase writes to /output

    def __post_init__(self) -> None:
        check_declaration(self)

    @property
    def primary(self) -> str:
        return next((metric.key for metric in self.metrics if metric.primary), "")

    def is_case_mean(self, key: str) -> bool:
        return any(metric.key == key and metric.per_case for metric in self.metrics)

    def as_task(self) -> Task:
        """The declaration in the shape of a registry entry, so pages and ranking read custom phases like built-in
        ones. Its scorer refuses: a custom phase is scored by its image only."""
        return Task(
            id=CUSTOM_TASK,
            title="Custom evaluation (the phase's own evaluation image)",
            input_kind="any",
            prediction_formats=(self.predictions_format,),
            output_files=self.output_files,
            metrics=tuple(Metric(key=m.key, title=m.label, direction=m.direction) for m in self.metrics),
            primary=self.primary,
            scorer=_image_only,
        )


def _image_only(*args: object, **kwargs: object) -> NoReturn:
    raise ContractError("a custom phase is scored by its evaluation image, not by a built-in evaluator")


def check_declaration(declaration: Declaration) -> None:
    """ContractError unless the keys are well-formed and unique, directions known and at most one is primary."""
    seen: set[str] = set()
    for metric in declaration.metrics:
        if not METRIC_KEY.match(metric.key or ""):
            raise ContractError(f"metric key {metric.key!r}: use 1-64 letters, digits, '_', '.', '-', starting with a "
                                "letter")
        if metric.key in seen:
            raise ContractError(f"metric key {metric.key!r} is declared twice")
        seen.add(metric.key)
        if metric.direction not in DIRECTIONS:
            raise ContractError(f"direction of {metric.key!r} must be 'higher' or 'lower', got {metric.direction!r}")
    if sum(metric.primary for metric in declaration.metrics) > 1:
        raise ContractError("only one metric can be the primary one")
    if declaration.predictions_format not in FORMATS:
        raise ContractError(f"predictions format must be one of {', '.join(FORMATS)}")
    for name in declaration.output_files:
        if not name or "/" in name or name in (".", "..") or len(name) > 128:
            raise ContractError(f"output file {name!r} must be a plain file name")


# /input ---------------------------------------------------------------------------------------------------------


def stage_predictions(
    source: Path, destination: Path, case_ids: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Copy the predictions at `source` (a CSV file, or a folder of `<case_id>/` folders) into the empty folder
    `destination` in the contract's layout, write `predictions.json` there and return its entries. Nothing but
    regular files and folders is copied; a link is refused, never followed. With `case_ids` (one part of a split
    test set) only those cases are staged: the other case folders are left out and a CSV keeps the rows whose
    `case_id` column names one of them."""
    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    if source.is_file():
        _copy_part(source, destination / PREDICTIONS_CSV, case_ids)
        entries.append(_entry("predictions", [PREDICTIONS_CSV], prefix=""))
    else:
        for case_dir in sorted(source.iterdir(), key=lambda path: path.name):
            if case_dir.name.startswith(".") or case_dir.name == PREDICTIONS_JSON:
                continue
            if not stat.S_ISDIR(os.lstat(case_dir).st_mode):
                if stat.S_ISREG(os.lstat(case_dir).st_mode) and case_dir.suffix.lower() == ".csv":
                    _copy_part(case_dir, destination / PREDICTIONS_CSV, case_ids)
                    entries.append(_entry("predictions", [PREDICTIONS_CSV], prefix=""))
                    continue
                raise ContractError(f"{case_dir.name} in the predictions is neither a case folder nor a CSV file")
            if case_ids is not None and case_dir.name not in case_ids:
                continue
            names = _copy_tree(case_dir, destination / case_dir.name)
            entries.append(_entry(case_dir.name, names, prefix=f"{case_dir.name}/"))
    (destination / PREDICTIONS_JSON).write_text(json.dumps(entries, indent=2), encoding="utf-8")
    return entries


def stage_ground_truth_part(
    source: Path, destination: Path, *, case_ids: Collection[str], all_case_ids: Collection[str]
) -> None:
    """Copy the ground truth folder `source` to `destination` keeping only the cases `case_ids` (one part of a split
    test set of the cases `all_case_ids`), so that an evaluation image scoring that part never reads the other:
    a top-level file or folder named after a case (`<case_id>`, `<case_id>.<ext>`) is kept for the part's cases
    only; a CSV file keeps the rows whose `case_id` column names one of them; a JSON object keyed by case ids keeps
    theirs. Anything else cannot be split by case and is refused (ContractError naming it)."""
    source, destination = Path(source), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    everyone = set(all_case_ids)
    for entry in sorted(source.iterdir(), key=lambda path: path.name):
        case = entry.name.split(".", 1)[0]
        mode = os.lstat(entry).st_mode
        if entry.name in everyone or case in everyone:
            if entry.name not in case_ids and case not in case_ids:
                continue
            if stat.S_ISDIR(mode):
                _copy_tree(entry, destination / entry.name)
            else:
                _copy_regular(entry, destination / entry.name)
        elif stat.S_ISREG(mode) and entry.suffix.lower() in (".csv", ".json"):
            _copy_part(entry, destination / entry.name, case_ids, known=everyone)
        else:
            raise ContractError(f"ground truth {entry.name} cannot be split by case (name it after a case, or use a "
                                "CSV with a case_id column or a JSON object keyed by case id)")


def manifest_part(manifest: dict[str, Any], case_ids: Collection[str]) -> dict[str, Any]:
    """The dataset manifest (`dataset.json`) listing only the cases `case_ids`."""
    cases = [case for case in manifest.get("cases", []) if isinstance(case, dict) and case.get("id") in case_ids]
    return {**manifest, "cases": cases}


def _copy_part(source: Path, target: Path, case_ids: Collection[str] | None, *, known: Collection[str] = ()) -> None:
    """Copy a CSV (rows of the `case_id` column in `case_ids`) or a JSON object keyed by case id (keys in
    `case_ids`; every key must be one of `known`); the whole file when `case_ids` is None."""
    if case_ids is None:
        _copy_regular(source, target)
        return
    if not stat.S_ISREG(os.lstat(source).st_mode):
        raise ContractError(f"{source.name} is not a regular file")
    if source.suffix.lower() == ".json":
        try:
            document = json.loads(source.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ContractError(f"{source.name} is not valid JSON") from None
        if not isinstance(document, dict) or not set(document) <= set(known):
            raise ContractError(f"{source.name} is not a JSON object keyed by case id, so it cannot be split by case")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({k: v for k, v in document.items() if k in case_ids}), encoding="utf-8")
        return
    with source.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    if not rows or "case_id" not in rows[0]:
        raise ContractError(f"{source.name} has no case_id column, so it cannot be split by case")
    column = rows[0].index("case_id")
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([rows[0], *(row for row in rows[1:] if len(row) > column
                                                 and row[column] in case_ids)])


def _entry(case_id: str, names: Iterable[str], *, prefix: str) -> dict[str, Any]:
    return {
        "pk": case_id,
        "case_id": case_id,
        "status": "Succeeded",
        "inputs": [{"interface": {"slug": "case-id"}, "value": case_id}],
        "outputs": [
            {"interface": {"slug": _slug(name), "relative_path": name}, "file": f"{INPUT_MOUNT}/{prefix}{name}"}
            for name in names
        ],
    }


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "file"


def _copy_regular(source: Path, target: Path) -> None:
    if not stat.S_ISREG(os.lstat(source).st_mode):
        raise ContractError(f"{source.name} in the predictions is not a regular file")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target, follow_symlinks=False)


def _copy_tree(source: Path, target: Path) -> list[str]:
    """Copy a case folder; the relative paths of its files, sorted."""
    names: list[str] = []
    for root, folders, files in os.walk(source, followlinks=False):
        for name in sorted(files) + [folder for folder in folders if os.path.islink(os.path.join(root, folder))]:
            path = Path(root) / name
            relative = path.relative_to(source).as_posix()
            _copy_regular(path, target / relative)
            names.append(relative)
    target.mkdir(parents=True, exist_ok=True)
    return sorted(names)


# /output/metrics.json -------------------------------------------------------------------------------------------


def _refuse_constant(name: str) -> float:
    raise ContractError(f"metrics.json holds {name}, which is not a number; report only finite numbers")


def parse_metrics(data: bytes) -> object:
    """The JSON document, refusing NaN and Infinity (which Python's json module would otherwise accept)."""
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except RecursionError:
        raise ContractError("metrics.json nests too deeply") from None
    except ValueError as error:
        if isinstance(error, ContractError):
            raise
        raise ContractError(f"metrics.json is not valid JSON ({str(error)[:120]})") from None


def _number(value: object, *, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ContractError(f"{where} must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ContractError(f"{where} is not a finite number")
    return number


def validated_metrics(
    document: object, *, declaration: Declaration, case_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """The metrics.json document reduced to the declared metrics, or ContractError naming what is wrong. The result
    has the platform's shape: `case` holds the per-case metrics of every case in `case_ids`, `aggregates` every
    declared metric (and `metric@group` values of declared metrics the image chose to report)."""
    if not isinstance(document, dict):
        raise ContractError("metrics.json must be an object with \"case\" and \"aggregates\"")
    cases, aggregates = document.get("case", {}), document.get("aggregates")
    if not isinstance(aggregates, dict):
        raise ContractError("metrics.json has no \"aggregates\" object")
    if not isinstance(cases, dict):
        raise ContractError("\"case\" in metrics.json must be an object {case_id: {metric: number}}")
    per_case = [metric.key for metric in declaration.metrics if metric.per_case]
    result: dict[str, dict[str, Any]] = {"case": {}, "aggregates": {}}
    if per_case:
        unknown = sorted(set(cases) - set(case_ids))
        if unknown:
            raise ContractError(f"metrics.json reports case {str(unknown[0])[:64]!r}, which is not a test case")
    for case_id in case_ids if per_case else ():
        values = cases.get(case_id)
        if not isinstance(values, dict):
            raise ContractError(f"metrics.json has no values for case {case_id!r}")
        result["case"][case_id] = {
            key: _number(values.get(key), where=f"case {case_id!r} metric {key!r}") if key in values
            else _missing(f"case {case_id!r} has no metric {key!r}")
            for key in per_case
        }
    for metric in declaration.metrics:
        key = metric.key
        if metric.per_case:
            mean = math.fsum(result["case"][case][key] for case in case_ids) / len(case_ids) if case_ids else None
            if key in aggregates:
                reported = _number(aggregates[key], where=f"aggregate {key!r}")
                if mean is not None and abs(reported - mean) > MEAN_TOLERANCE * max(1.0, abs(mean)):
                    raise ContractError(f"aggregate {key!r} ({reported:g}) is not the mean of its case values "
                                        f"({mean:g}); a per-case metric's aggregate must be their mean")
            if mean is None:
                raise ContractError(f"metric {key!r} has no case values to average")
            result["aggregates"][key] = mean
        elif key in aggregates:
            result["aggregates"][key] = _number(aggregates[key], where=f"aggregate {key!r}")
        else:
            raise ContractError(f"metrics.json has no aggregate {key!r}")
    declared = {metric.key for metric in declaration.metrics}
    for key, value in aggregates.items():
        base, separator, group = str(key).partition("@")
        if separator and base in declared and group:
            result["aggregates"][str(key)[:128]] = _number(value, where=f"aggregate {str(key)[:128]!r}")
    return result


def _missing(message: str) -> float:
    raise ContractError(message)
