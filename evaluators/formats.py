"""Ground-truth and prediction readers/writers for every task (docs/formats.md), with validation.

Every problem with a submission raises `PredictionError` with one line naming the file, the line or the case and
what was expected; these messages never quote ground-truth values. Problems with the hidden ground truth raise
`GroundTruthError`.

In-memory objects (both for ground truth and predictions), per case id:

- aasce-cobb: ``{"angles": array([pt, mt, tl])}``
- fracture-ct: ground truth ``{"vertebrae": {name: grade}}``; prediction ``{"vertebrae": {name: p}, "patient": p|None}``
- vertebra-labelling-xr: ``{"centroids": {name: (x, y)}}`` (+ ``"view"`` in the ground truth when known)
- metastatic-body-ct, lumbosacral-ct: the path of the image file (read lazily by `read_segmentation`, one case at
  a time, so a phase of large volumes never sits in memory at once)
"""

from __future__ import annotations

import csv
import functools
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from evaluators import layout
from evaluators.cobb import cobb_angles
from evaluators.errors import GroundTruthError, PredictionError
from evaluators.imageheader import HeaderError, read_image_header

SEGMENTATION_SUFFIXES = (".nii.gz", ".nii", ".mha", ".nrrd")
SEGMENTATION_TASKS = {"metastatic-body-ct": (0, 1), "lumbosacral-ct": (0, 1, 2, 3)}  # task -> allowed label values
ANGLE_COLUMNS = ("pt", "mt", "tl")
MAX_LISTED = 5  # case ids named in one message at most


def _listing(items: Iterable[str]) -> str:
    items = sorted(items)
    shown = ", ".join(repr(item) for item in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


MAX_JSON_BYTES = 16 * 1024**2  # a per-case JSON prediction (centroids, probabilities, 68 landmarks) is a few KiB
QUOTE_MAX = 80  # characters of untrusted input quoted in one message at most


def _quote_text(value: object) -> str:
    """repr() of untrusted input, cut to QUOTE_MAX characters with an ellipsis (a value may be megabytes long)."""
    text = value if isinstance(value, str) else str(value)
    return repr(text if len(text) <= QUOTE_MAX else text[:QUOTE_MAX] + "…")


def _check_task(task_id: str) -> None:
    known = ("aasce-cobb", "fracture-ct", "vertebra-labelling-xr", *SEGMENTATION_TASKS)
    if task_id not in known:
        raise ValueError(f"unknown task {task_id!r}; expected one of {', '.join(known)}")


# ---------------------------------------------------------------------------------------------------- CSV helpers


#: A plain decimal number as CSV and JSON predictions write it: ASCII digits, optional sign, '.', exponent. Python's
#: float() also takes '1_0' and other scripts' digits ('١٢'), which would otherwise pass one check and fail another.
NUMBER_PATTERN = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(NUMBER_PATTERN)
_NOT_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


@dataclass(frozen=True)
class Table:
    """A CSV read as strings, with vectorised column parsers whose errors name the file and the physical line of
    the first offending row (100,000 rows parse in a fraction of a second). Blank lines are skipped, a UTF-8 byte
    order mark is ignored, and a quoted field may span lines: `lines[i]` is the line where row i starts."""

    path: Path
    frame: pd.DataFrame
    error: type[Exception]
    lines: tuple[int, ...]

    @classmethod
    def read(cls, path: Path, columns: tuple[str, ...], error: type[Exception]) -> Table:
        """Read a CSV whose first non-blank row names at least `columns`."""
        if not path.is_file():
            raise error(f"{path.name}: file not found")
        if path.stat().st_size == 0:
            raise error(f"{path.name}: the file is empty; expected a header row {','.join(columns)}")
        try:
            with path.open("r", encoding="utf-8-sig", newline="") as handle:
                records, lines = _records(handle, where=path.name, error=error)
        except UnicodeDecodeError:
            raise error(f"{path.name}: not UTF-8 text; save the CSV as UTF-8") from None
        if not records:
            raise error(f"{path.name}: the file has no rows; expected a header row {','.join(columns)}")
        header = [field.strip().lower() for field in records[0]]
        missing = [column for column in columns if column not in header]
        if missing:
            raise error(f"{path.name}: missing column(s) {', '.join(missing)}; expected header {','.join(columns)}")
        twice = [column for column in columns if header.count(column) > 1]
        if twice:
            raise error(f"{path.name}: column(s) {', '.join(twice)} appear more than once in the header")
        width = len(header)
        for record, line in zip(records[1:], lines[1:]):
            if len(record) != width and (len(record) < width or "".join(record[width:]).strip()):
                raise error(f"{path.name} line {line}: {len(record)} fields, but the header has {width}")
        positions = {column: header.index(column) for column in columns}
        frame = pd.DataFrame(
            {column: [record[index].strip() for record in records[1:]] for column, index in positions.items()},
            dtype=object,
        )
        return cls(path=path, frame=frame, error=error, lines=tuple(lines[1:]))

    def where(self, index: int) -> str:
        return f"{self.path.name} line {self.lines[index]}"

    def _strings(self, column: str) -> pd.Series:
        return self.frame[column]  # stripped when read

    def require(self, valid: np.ndarray, message: Callable[[int], str]) -> None:
        """Raise `message(index)` for the first row where `valid` is False."""
        if not np.all(valid):
            index = int(np.argmin(valid))
            raise self.error(f"{self.where(index)}: {message(index)}")

    def case_ids(self) -> list[str]:
        values = self._strings("case_id")
        valid = _matches(layout.CASE_ID_PATTERN, values)
        if not valid.all():
            index = int(np.argmin(valid))
            _case_id(values.iloc[index], where=self.where(index), error=self.error)
        case_ids: list[str] = values.tolist()  # pandas has no type stubs here: its results are Any
        return case_ids

    def numbers(self, column: str) -> np.ndarray:
        raw = self._strings(column)
        # pandas' parser takes only plain decimals (no '1_0', no other scripts' digits: tests pin it); `_number`
        # explains the first value it refused.
        values: np.ndarray = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            index = int(np.argmin(finite))
            _number(raw.iloc[index], where=self.where(index), what=column, error=self.error)
            raise self.error(f"{self.where(index)}: {column} {_quote_text(raw.iloc[index])} is not a number")
        return values

    def vertebrae(self, *, allow: tuple[str, ...] = ()) -> list[str]:
        values = self._strings("vertebra")
        valid = values.isin([*layout.VERTEBRA_LABELS, *allow]).to_numpy(dtype=bool)
        if not valid.all():
            index = int(np.argmin(valid))
            _vertebra(values.iloc[index], where=self.where(index), error=self.error, allow=allow)
        names: list[str] = values.tolist()
        return names

    def unique(self, keys: list[tuple[object, ...]], message: Callable[[int], str]) -> None:
        """Raise `message(index)` for the first row whose key repeats an earlier row's."""
        duplicated = pd.Series(keys, dtype=object).duplicated().to_numpy(dtype=bool)
        self.require(~duplicated, message)


@functools.lru_cache(maxsize=8)
def _joined(pattern: re.Pattern[str]) -> re.Pattern[str]:
    return re.compile(f"(?:{pattern.pattern.strip('^$')})(?:\x00(?:{pattern.pattern.strip('^$')}))*")


def _matches(pattern: re.Pattern[str], values: pd.Series) -> np.ndarray:
    """Which values `pattern` matches in full. One regex call over the NUL-joined column when all match (the common
    case; a NUL inside a field can only make it fail), a loop to find the offenders otherwise."""
    if len(values) and _joined(pattern).fullmatch("\x00".join(values)):
        return np.ones(len(values), dtype=bool)
    return np.fromiter((pattern.fullmatch(value) is not None for value in values), dtype=bool, count=len(values))


def _records(handle: Iterable[str], *, where: str, error: type[Exception]) -> tuple[list[list[str]], list[int]]:
    """The non-blank records of a CSV with the physical line each starts on (a quoted field may hold newlines)."""
    reader = csv.reader(handle, skipinitialspace=True, strict=True)
    records, lines, start = [], [], 1
    try:
        for record in reader:
            if any(record) and "".join(record).strip():
                records.append(record)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as problem:
        raise error(f"{where} line {start}: not a readable CSV row ({_quote_text(str(problem))})") from None
    return records, lines


def _number(value: object, *, where: str, what: str, error: type[Exception]) -> float:
    """A finite float from a CSV field or a JSON value: a JSON number, or a string in plain decimal notation."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise error(f"{where}: {what} {_quote_text(value)} is not a number")
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _NOT_FINITE:
            raise error(f"{where}: {what} must be a finite number, got {_quote_text(value)}")
        if not _NUMBER.fullmatch(text):
            try:
                float(text)
            except ValueError:
                raise error(f"{where}: {what} {_quote_text(value)} is not a number") from None
            raise error(
                f"{where}: {what} {_quote_text(value)} is not a plain decimal number; write it with the digits 0-9, "
                "an optional sign, '.' and exponent (no '_' separators or other digit sets)"
            )
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise error(f"{where}: {what} must be a finite number, got {_quote_text(value)}") from None
    if not math.isfinite(number):
        raise error(f"{where}: {what} must be a finite number, got {_quote_text(value)}")
    return number


def _case_id(value: str, *, where: str, error: type[Exception]) -> str:
    case_id = value.strip()
    if not layout.CASE_ID_PATTERN.fullmatch(case_id):
        raise error(
            f"{where}: invalid case id {_quote_text(case_id)}: expected 1-128 characters of letters, digits, "
            "'_', '.', '-'"
        )
    return case_id


def _vertebra(value: str, *, where: str, error: type[Exception], allow: tuple[str, ...] = ()) -> str:
    name = value.strip()
    if name not in layout.VERTEBRA_LABELS and name not in allow:
        expected = "C1..C7, T1..T12, L1..L6, S1, S2" + "".join(f" or {extra!r}" for extra in allow)
        raise error(f"{where}: unknown vertebra {_quote_text(name)}; expected {expected}")
    return name


# -------------------------------------------------------------------------------------------------- ground truth


@dataclass(frozen=True)
class GroundTruthSource:
    """Where a task's ground truth lives: its ground_truth/ folder and, when found, the dataset manifest."""

    directory: Path
    manifest: layout.Manifest | None

    @classmethod
    def locate(cls, path: str | Path) -> GroundTruthSource:
        """Accept a dataset folder (with dataset.json) or its ground_truth/ folder (manifest read from the parent
        when present), or a bare ground-truth folder."""
        path = Path(path)
        if not path.is_dir():
            raise GroundTruthError(f"{path}: ground-truth folder not found")
        for dataset_dir, gt_dir in ((path, path / layout.GROUND_TRUTH), (path.parent, path)):
            if (dataset_dir / layout.MANIFEST).is_file() and gt_dir.is_dir():
                try:
                    return cls(directory=gt_dir, manifest=layout.read_manifest(dataset_dir))
                except layout.LayoutError as problem:
                    raise GroundTruthError(str(problem)) from None
        return cls(directory=path, manifest=None)


def _aasce_ground_truth(gt_dir: Path) -> dict[str, Any]:
    angles_path = gt_dir / "angles.csv"
    if angles_path.is_file():
        return _angles_table(Table.read(angles_path, ("case_id", *ANGLE_COLUMNS), GroundTruthError))
    landmarks_path = gt_dir / "landmarks.csv"
    xs, ys = [f"x{i}" for i in range(1, 69)], [f"y{i}" for i in range(1, 69)]
    table = Table.read(landmarks_path, ("case_id", "image_height", *xs, *ys), GroundTruthError)
    case_ids = table.case_ids()
    table.unique([(c,) for c in case_ids], lambda i: f"duplicate case {case_ids[i]!r}")
    heights = table.numbers("image_height")
    points = np.stack(
        [np.column_stack([table.numbers(c) for c in xs]), np.column_stack([table.numbers(c) for c in ys])], axis=-1
    )
    return {case_id: {"angles": cobb_angles(p, h)} for case_id, p, h in zip(case_ids, points, heights)}


def _fracture_ground_truth(gt_dir: Path) -> dict[str, Any]:
    table = Table.read(gt_dir / "vertebrae.csv", ("case_id", "vertebra", "grade"), GroundTruthError)
    case_ids, vertebrae, grades = table.case_ids(), table.vertebrae(), table.numbers("grade")
    table.require(np.isin(grades, (0, 1, 2, 3)), lambda i: f"grade must be a Genant grade 0-3, got {grades[i]:g}")
    table.unique(
        list(zip(case_ids, vertebrae)), lambda i: f"duplicate vertebra {vertebrae[i]} for case {case_ids[i]!r}"
    )
    truth: dict[str, dict[str, Any]] = {}
    for case_id, vertebra, grade in zip(case_ids, vertebrae, grades):
        truth.setdefault(case_id, {"vertebrae": {}})["vertebrae"][vertebra] = int(grade)
    return truth


def _read_json(path: Path, error: type[Exception], *, where: str | None = None) -> dict[str, Any]:
    where = where or path.name
    if path.stat().st_size == 0:
        raise error(f"{where}: the file is empty")
    if path.is_symlink():
        raise error(f"{where}: is a symbolic link; links are not followed")
    if path.stat().st_size > MAX_JSON_BYTES:
        raise error(f"{where}: {path.stat().st_size} bytes, more than the {MAX_JSON_BYTES} accepted for a JSON file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise error(f"{where}: not valid UTF-8 JSON ({problem})") from None
    except (ValueError, RecursionError):  # a number of thousands of digits, or nesting thousands deep
        raise error(f"{where}: not usable JSON (a number too long or nesting too deep)") from None
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object at the top level")
    return data


def _centroids(
    data: dict[str, Any], *, where: str, error: type[Exception], dimension: int | None = None
) -> dict[str, Any]:
    centroids = data.get("centroids")
    if not isinstance(centroids, dict):
        raise error(f'{where}: expected a key "centroids" holding {{vertebra: [x, y]}}')
    parsed = {}
    for name, point in centroids.items():
        name = _vertebra(str(name), where=where, error=error)
        if not isinstance(point, (list, tuple)) or len(point) not in (2, 3):
            raise error(f"{where}: centroid of {name} must be a list [x, y] in mm")
        if dimension is not None and len(point) != dimension:
            raise error(f"{where}: centroid of {name} has {len(point)} coordinates, expected {dimension}")
        parsed[name] = tuple(_number(value, where=where, what=f"{name} coordinate", error=error) for value in point)
    return parsed


def _labelling_ground_truth(gt_dir: Path) -> dict[str, Any]:
    truth = {}
    for path in sorted(gt_dir.glob("*.json")):
        case_id = _case_id(path.stem, where=path.name, error=GroundTruthError)
        data = _read_json(path, GroundTruthError)
        view = data.get("view")
        meta = gt_dir.parent / layout.INPUTS / case_id / "meta.json"
        if view is None and meta.is_file():
            view = _read_json(meta, GroundTruthError).get("view")
        truth[case_id] = {"centroids": _centroids(data, where=path.name, error=GroundTruthError), "view": view}
    return truth


def _image_files(folder: Path) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        for suffix in SEGMENTATION_SUFFIXES:
            if path.name.endswith(suffix) and path.is_file():
                files[path.name[: -len(suffix)]] = path
    return files


def ground_truth_cases(task_id: str, directory: str | Path) -> dict[str, Any]:
    """{case_id: ground truth} of every case the ground_truth/ folder `directory` holds, whatever a manifest lists
    (a dataset check reports the listed cases it lacks). A malformed or missing ground-truth file raises
    GroundTruthError naming it."""
    _check_task(task_id)
    readers = {
        "aasce-cobb": _aasce_ground_truth,
        "fracture-ct": _fracture_ground_truth,
        "vertebra-labelling-xr": _labelling_ground_truth,
    }
    directory = Path(directory)
    return readers[task_id](directory) if task_id in readers else _image_files(directory)


def load_ground_truth(task_id: str, gt_dir: str | Path) -> dict[str, Any]:
    """{case_id: ground truth} for `task_id` from a ground_truth/ folder or a dataset folder (docs/formats.md).

    When a manifest is found its case ids are the test set: ground truth must exist for each of them (extra
    ground-truth entries are ignored).
    """
    source = GroundTruthSource.locate(gt_dir)
    truth = ground_truth_cases(task_id, source.directory)
    if source.manifest is None:
        if not truth:
            raise GroundTruthError(f"{source.directory}: no ground truth found for task {task_id}")
        return truth
    missing = [case_id for case_id in source.manifest.case_ids if case_id not in truth]
    if missing:
        raise GroundTruthError(f"{source.directory}: no ground truth for case(s) {_listing(missing)}")
    return {case_id: truth[case_id] for case_id in source.manifest.case_ids}


# --------------------------------------------------------------------------------------------------- predictions


def _check_cases(found: dict[str, Any], case_ids: Iterable[str], *, where: str) -> dict[str, Any]:
    expected = list(case_ids)
    extra = set(found) - set(expected)
    if extra:
        raise PredictionError(f"{where}: unknown case(s) {_listing(extra)} (not in this phase's test set)")
    missing = [case_id for case_id in expected if case_id not in found]
    if missing:
        raise PredictionError(f"{where}: no prediction for case(s) {_listing(missing)}")
    return {case_id: found[case_id] for case_id in expected}


def _angles_table(table: Table) -> dict[str, Any]:
    case_ids = table.case_ids()
    angles = np.column_stack([table.numbers(column) for column in ANGLE_COLUMNS])
    table.require(angles.min(axis=1) >= 0, lambda i: "Cobb angles must be non-negative degrees")
    table.unique([(c,) for c in case_ids], lambda i: f"duplicate case {case_ids[i]!r}")
    return {case_id: {"angles": values} for case_id, values in zip(case_ids, angles)}


def _angles_csv(path: Path) -> dict[str, Any]:
    return _angles_table(Table.read(path, ("case_id", *ANGLE_COLUMNS), PredictionError))


def _fracture_csv(path: Path) -> dict[str, Any]:
    table = Table.read(path, ("case_id", "vertebra", "probability"), PredictionError)
    case_ids, vertebrae = table.case_ids(), table.vertebrae(allow=("patient",))
    probabilities = table.numbers("probability")
    table.require(
        (probabilities >= 0) & (probabilities <= 1),
        lambda i: f"probability must lie in [0, 1], got {_quote_text(str(table.frame['probability'].iloc[i]).strip())}",
    )
    table.unique(
        list(zip(case_ids, vertebrae)),
        lambda i: (
            f"duplicate patient score for case {case_ids[i]!r}"
            if vertebrae[i] == "patient"
            else f"duplicate vertebra {vertebrae[i]} for case {case_ids[i]!r}"
        ),
    )
    found: dict[str, dict[str, Any]] = {}
    for case_id, vertebra, probability in zip(case_ids, vertebrae, probabilities):
        prediction = found.setdefault(case_id, {"vertebrae": {}, "patient": None})
        if vertebra == "patient":
            prediction["patient"] = float(probability)
        else:
            prediction["vertebrae"][vertebra] = float(probability)
    return found


def _probability(value: object, *, where: str) -> float:
    probability = _number(value, where=where, what="probability", error=PredictionError)
    if not 0.0 <= probability <= 1.0:
        raise PredictionError(f"{where}: probability must lie in [0, 1], got {_quote_text(value)}")
    return probability


def _labelling_csv(path: Path) -> dict[str, Any]:
    table = Table.read(path, ("case_id", "vertebra", "x", "y"), PredictionError)
    case_ids, vertebrae = table.case_ids(), table.vertebrae()
    xs, ys = table.numbers("x"), table.numbers("y")
    table.unique(
        list(zip(case_ids, vertebrae)), lambda i: f"duplicate vertebra {vertebrae[i]} for case {case_ids[i]!r}"
    )
    found: dict[str, dict[str, Any]] = {}
    for case_id, vertebra, x, y in zip(case_ids, vertebrae, xs, ys):
        found.setdefault(case_id, {"centroids": {}})["centroids"][vertebra] = (float(x), float(y))
    return found


def _aasce_case(case_dir: Path) -> dict[str, Any]:
    angles_path, landmarks_path = case_dir / "angles.json", case_dir / "landmarks.json"
    where = f"{case_dir.name}/{angles_path.name}"
    if angles_path.is_file():
        angles = _read_json(angles_path, PredictionError, where=where).get("angles")
        if not isinstance(angles, list) or len(angles) != 3:
            raise PredictionError(f'{where}: expected {{"angles": [pt, mt, tl]}} with three numbers')
        values = np.array([_number(v, where=where, what="angle", error=PredictionError) for v in angles])
        if values.min() < 0:
            raise PredictionError(f"{where}: Cobb angles must be non-negative degrees")
        return {"angles": values}
    where = f"{case_dir.name}/{landmarks_path.name}"
    if not landmarks_path.is_file():
        raise PredictionError(f"{case_dir.name}: expected angles.json or landmarks.json in the case folder")
    data = _read_json(landmarks_path, PredictionError, where=where)
    landmarks, height = data.get("landmarks"), data.get("image_height")
    try:
        points = np.asarray(landmarks, dtype=np.float64)
    except (TypeError, ValueError):
        raise PredictionError(f'{where}: "landmarks" must be 68 pairs [x, y] of numbers') from None
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise PredictionError(
            f'{where}: "landmarks" must be 68 pairs [x, y] of finite numbers, got shape {points.shape}'
        )
    height = _number(height, where=where, what="image_height", error=PredictionError)
    try:
        return {"angles": cobb_angles(points, height), "landmarks": points, "image_height": height}
    except ValueError as problem:
        raise PredictionError(f"{where}: {problem}") from None


def _fracture_case(case_dir: Path) -> dict[str, Any]:
    path = case_dir / "fractures.json"
    where = f"{case_dir.name}/{path.name}"
    if not path.is_file():
        raise PredictionError(f"{case_dir.name}: expected fractures.json in the case folder")
    data = _read_json(path, PredictionError, where=where)
    vertebrae = data.get("vertebrae")
    if not isinstance(vertebrae, dict):
        raise PredictionError(f'{where}: expected a key "vertebrae" holding {{vertebra: probability}}')
    parsed = {
        _vertebra(str(name), where=where, error=PredictionError): _probability(value, where=f"{where} {name}")
        for name, value in vertebrae.items()
    }
    patient = data.get("patient")
    return {
        "vertebrae": parsed,
        "patient": None if patient is None else _probability(patient, where=f"{where} patient"),
    }


def _labelling_case(case_dir: Path) -> dict[str, Any]:
    path = case_dir / "centroids.json"
    if not path.is_file():
        raise PredictionError(f"{case_dir.name}: expected centroids.json in the case folder")
    where = f"{case_dir.name}/{path.name}"
    data = _read_json(path, PredictionError, where=where)
    return {"centroids": _centroids(data, where=where, error=PredictionError, dimension=2)}


def _segmentation_case(case_dir: Path) -> Path:
    files = [case_dir / f"segmentation{suffix}" for suffix in SEGMENTATION_SUFFIXES]
    linked = [path.name for path in files if path.is_symlink()]
    if linked:
        raise PredictionError(f"{case_dir.name}/{linked[0]}: is a symbolic link; links are not followed")
    present = [path for path in files if path.is_file()]
    if not present:
        raise PredictionError(f"{case_dir.name}: expected segmentation.nii.gz (or .mha / .nrrd) in the case folder")
    if len(present) > 1:
        raise PredictionError(
            f"{case_dir.name}: several segmentation files ({_listing(p.name for p in present)}); keep one"
        )
    return present[0]


CSV_READERS = {"aasce-cobb": _angles_csv, "fracture-ct": _fracture_csv, "vertebra-labelling-xr": _labelling_csv}
CASE_READERS = {
    "aasce-cobb": _aasce_case,
    "fracture-ct": _fracture_case,
    "vertebra-labelling-xr": _labelling_case,
    "metastatic-body-ct": _segmentation_case,
    "lumbosacral-ct": _segmentation_case,
}


def _single_csv(path: Path) -> Path:
    """A folder holding one .csv file and no case folders stands for that file (a CSV mounted as a folder)."""
    if not path.is_dir():
        return path
    entries = [entry for entry in path.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_file() and entries[0].suffix.lower() == ".csv":
        return entries[0]
    return path


def load_predictions(task_id: str, path: str | Path, *, case_ids: Iterable[str]) -> dict[str, Any]:
    """{case_id: prediction} from a phase CSV file or a folder of case folders (docs/formats.md), for exactly the
    cases `case_ids` (missing, duplicate and unknown cases are errors). A folder holding a single .csv file and
    nothing else is read as that CSV."""
    _check_task(task_id)
    path = _single_csv(Path(path))
    if path.is_file():
        if task_id not in CSV_READERS:
            raise PredictionError(
                f"{path.name}: task {task_id} takes a folder with one segmentation per case, not a file"
            )
        if path.suffix.lower() != ".csv":
            raise PredictionError(f"{path.name}: expected a .csv file or a folder of case folders")
        return _check_cases(CSV_READERS[task_id](path), case_ids, where=path.name)
    if not path.is_dir():
        raise PredictionError(f"{path.name}: predictions not found")
    found = {}
    for case_dir in sorted(path.iterdir()):
        if case_dir.name.startswith(".") or not (case_dir.is_dir() or case_dir.is_symlink()):
            continue
        if case_dir.is_symlink():
            raise PredictionError(
                f"{path.name}: {_quote_text(case_dir.name)} is a symbolic link; links are not followed"
            )
        found[_case_id(case_dir.name, where=f"folder {_quote_text(case_dir.name)}", error=PredictionError)] = case_dir
    cases = _check_cases(found, case_ids, where=path.name)
    return {case_id: CASE_READERS[task_id](case_dir) for case_id, case_dir in cases.items()}


# ------------------------------------------------------------------------------------------------- segmentations

SPACING_TOLERANCE = 1e-4  # relative
ORIGIN_TOLERANCE = 1e-3  # in voxel spacings
DIRECTION_TOLERANCE = 1e-4


def _read_image(path: Path, *, where: str, error: type[Exception]) -> sitk.Image:
    if path.stat().st_size == 0:
        raise error(f"{where}: the file is empty")
    try:
        return sitk.ReadImage(str(path))
    except RuntimeError:
        raise error(f"{where}: could not be read as an image (.nii.gz, .mha or .nrrd)") from None


def _rounded(values: Iterable[float]) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in values)


def geometry_mismatch(image: sitk.Image, reference: sitk.Image) -> str | None:
    """A phrase describing how `image`'s grid differs from `reference`'s, or None when they agree (size exactly;
    spacing, origin and direction within tolerance)."""
    if image.GetDimension() != reference.GetDimension():
        return f"has {image.GetDimension()} dimensions, the input image {reference.GetDimension()}"
    if image.GetSize() != reference.GetSize():
        return f"size {image.GetSize()} differs from the input image's {reference.GetSize()}"
    spacing, expected_spacing = np.array(image.GetSpacing()), np.array(reference.GetSpacing())
    if not np.allclose(spacing, expected_spacing, rtol=SPACING_TOLERANCE, atol=0):
        return f"spacing {_rounded(spacing)} differs from the input image's {_rounded(expected_spacing)}"
    origin, expected_origin = np.array(image.GetOrigin()), np.array(reference.GetOrigin())
    if np.any(np.abs(origin - expected_origin) > ORIGIN_TOLERANCE * expected_spacing):
        return f"origin {_rounded(origin)} differs from the input image's {_rounded(expected_origin)}"
    direction, expected_direction = np.array(image.GetDirection()), np.array(reference.GetDirection())
    if np.any(np.abs(direction - expected_direction) > DIRECTION_TOLERANCE):
        return f"direction {_rounded(direction)} differs from the input image's {_rounded(expected_direction)}"
    return None


def read_ground_truth_image(path: Path) -> sitk.Image:
    image = _read_image(Path(path), where=Path(path).name, error=GroundTruthError)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise GroundTruthError(f"{Path(path).name}: expected a scalar label map")
    return image


#: Largest scalar voxel (float64): no label map needs more bytes per voxel than this.
MAX_BYTES_PER_VOXEL = 8


def check_segmentation_header(path: Path, *, where: str, reference: sitk.Image) -> None:
    """Refuse a predicted volume from its header alone — before a single voxel is decompressed — unless it is one
    scalar component per voxel on exactly as many voxels as the case's input (the reference grid), at most
    MAX_BYTES_PER_VOXEL bytes each: a small compressed file declaring a huge grid never reaches memory."""
    if path.stat().st_size == 0:
        raise PredictionError(f"{where}: the file is empty")
    try:
        header = read_image_header(path)
    except HeaderError as problem:
        raise PredictionError(f"{where}: could not be read as an image (.nii.gz, .mha or .nrrd): {problem}") from None
    expected = tuple(int(value) for value in reference.GetSize())
    if header.voxels != math.prod(expected):
        raise PredictionError(
            f"{where}: size {header.size} differs from the input image's {expected} ({header.voxels} voxels "
            f"against {math.prod(expected)}; refused from the header, before reading the voxels)"
        )
    if header.components != 1:
        raise PredictionError(f"{where}: expected a scalar label map, got {header.components} components per voxel")
    if header.data_bytes > math.prod(expected) * MAX_BYTES_PER_VOXEL:
        raise PredictionError(f"{where}: {header.bytes_per_component} bytes per voxel; use an integer label type")


def read_segmentation(
    path: str | Path, *, case_id: str, reference: sitk.Image, allowed_labels: Iterable[int]
) -> np.ndarray:
    """The predicted label map of one case as a numpy array (SimpleITK axis order z, y, x), after checking that it
    is a readable scalar image on the reference grid whose values are all in `allowed_labels` (the grid is checked
    from the header first, see `check_segmentation_header`)."""
    path = Path(path)
    where = f"{case_id}/{path.name}"
    check_segmentation_header(path, where=where, reference=reference)
    image = _read_image(path, where=where, error=PredictionError)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise PredictionError(
            f"{where}: expected a scalar label map, got {image.GetNumberOfComponentsPerPixel()} components per voxel"
        )
    mismatch = geometry_mismatch(image, reference)
    if mismatch:
        raise PredictionError(f"{where}: {mismatch}")
    array = sitk.GetArrayViewFromImage(image)
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            raise PredictionError(f"{where}: label values must be integers {list(allowed_labels)}")
    low, high = array.min(), array.max()
    allowed = np.asarray(allowed_labels)
    if low < allowed.min() or high > allowed.max():
        present = np.unique(array)
        wrong = [int(v) if float(v).is_integer() else float(v) for v in present if v not in allowed][:MAX_LISTED]
        raise PredictionError(f"{where}: unexpected label value(s) {wrong}; allowed {list(allowed_labels)}")
    return array.astype(np.uint8)


# --------------------------------------------------------------------------------------------------------- write


def _json_ready(prediction: dict[str, Any]) -> dict[str, Any]:
    return {key: value.tolist() if isinstance(value, np.ndarray) else value for key, value in prediction.items()}


def _write_case(task_id: str, case_dir: Path, prediction: Any) -> None:
    case_dir.mkdir(parents=True, exist_ok=True)
    if task_id in SEGMENTATION_TASKS:
        if not isinstance(prediction, sitk.Image):
            raise TypeError(f"{case_dir.name}: a {task_id} prediction must be a SimpleITK.Image")
        sitk.WriteImage(prediction, str(case_dir / "segmentation.nii.gz"), useCompression=True)
        return
    if task_id == "aasce-cobb":
        data = _json_ready(prediction)
        if "landmarks" in data:
            (case_dir / "landmarks.json").write_text(
                json.dumps({"landmarks": data["landmarks"], "image_height": data["image_height"]}) + "\n"
            )
            if "angles" not in data:
                data["angles"] = cobb_angles(data["landmarks"], data["image_height"]).tolist()
        (case_dir / "angles.json").write_text(json.dumps({"angles": [float(v) for v in data["angles"]]}) + "\n")
        return
    name = "fractures.json" if task_id == "fracture-ct" else "centroids.json"
    data = _json_ready(prediction)
    if task_id == "vertebra-labelling-xr":
        data = {"centroids": {k: [float(c) for c in v] for k, v in data["centroids"].items()}}
    else:
        data = {"vertebrae": {k: float(v) for k, v in data["vertebrae"].items()}, "patient": data.get("patient")}
    (case_dir / name).write_text(json.dumps(data, indent=1) + "\n")


def _csv_rows(task_id: str, predictions: dict[str, Any]) -> Iterator[tuple[str, ...]]:
    if task_id == "aasce-cobb":
        yield ("case_id", *ANGLE_COLUMNS)
        for case_id, prediction in predictions.items():
            angles = prediction.get("angles")
            if angles is None:
                angles = cobb_angles(prediction["landmarks"], prediction["image_height"])
            yield (case_id, *(repr(float(v)) for v in angles))
    elif task_id == "fracture-ct":
        yield ("case_id", "vertebra", "probability")
        for case_id, prediction in predictions.items():
            for vertebra, probability in prediction["vertebrae"].items():
                yield (case_id, vertebra, repr(float(probability)))
            if prediction.get("patient") is not None:
                yield (case_id, "patient", repr(float(prediction["patient"])))
    else:
        yield ("case_id", "vertebra", "x", "y")
        for case_id, prediction in predictions.items():
            for vertebra, (x, y) in prediction["centroids"].items():
                yield (case_id, vertebra, repr(float(x)), repr(float(y)))


def write_predictions(task_id: str, predictions: dict[str, Any], out: str | Path) -> Path:
    """Write `{case_id: prediction}` as `out/<case_id>/...` (the container shape), or as one phase CSV when `out`
    ends in .csv (aasce-cobb, fracture-ct, vertebra-labelling-xr). Returns `out`."""
    _check_task(task_id)
    out = Path(out)
    if out.suffix.lower() == ".csv":
        if task_id not in CSV_READERS:
            raise ValueError(f"task {task_id} has no CSV prediction format; write to a folder")
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(_csv_rows(task_id, predictions))
        return out
    for case_id, prediction in predictions.items():
        _write_case(task_id, out / layout.validate_case_id(case_id), prediction)
    return out
