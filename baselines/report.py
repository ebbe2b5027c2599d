"""What a baseline run really predicted: per case the method's own output or a named fallback, and whether the run
is degenerate (a constant, or mostly fallbacks), so that no fallback row poses as the method on a leaderboard.

- ``RunReport``: ``method``, ``task``, ``cases`` (case id -> ``"method"`` or the fallback's name, e.g.
  ``"training-mean"``), ``fallback_share``, ``constant``, ``degenerate`` and ``reason`` (a plain sentence for a web
  page, empty when the run is not degenerate); ``as_dict()`` / ``RunReport.from_dict()`` round-trip through JSON;
  ``fallback_counts`` and ``summary()`` (a benchmark table's fallback cell).
- ``assess(*, task, method, cases, predictions) -> RunReport``: ``constant`` when at least two cases were predicted
  and every case got the same prediction; ``degenerate`` when constant or when more than half of the cases fell back.
- ``recording()`` / ``note_fallback(case_id, name)``: a method's ``predict`` calls ``note_fallback`` where it
  replaces its own output by a fallback; ``baselines.api.predict`` wraps the call in ``recording()``. A context
  variable carries the log so the method contract (``predict`` returns the predictions in the task's format, which
  participants' formats share) stays as it is; outside ``recording()`` a note is dropped.
- ``report_path(predictions_path)`` (the predictions path + ``.report.json``), ``write_report`` and ``read_report``.

How predictions are compared for ``constant``: mappings by key and value, sequences item by item, numbers exactly,
SimpleITK images and numpy arrays by their voxels (shape, type and a SHA-256 digest of the values); an array, or a
mapping of numbers, whose entries all hold one
value counts as that value whatever its shape or keys, so an empty mask on every volume, or one score for every
vertebra of every patient, is constant although the volumes' shapes and the vertebrae differ.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

METHOD = "method"
REPORT_SUFFIX = ".report.json"

_log: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("baseline_fallbacks", default=None)


@dataclass(frozen=True)
class RunReport:
    method: str
    task: str
    cases: dict[str, str]
    fallback_share: float
    constant: bool
    degenerate: bool
    reason: str

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> RunReport:
        if not isinstance(data, Mapping):
            raise ValueError("a run report must be a JSON object")
        expected = {"method", "task", "cases", "fallback_share", "constant", "degenerate", "reason"}
        if set(data) != expected:
            missing, unknown = sorted(expected - set(data)), sorted(set(data) - expected)
            raise ValueError(f"run report keys differ: missing {missing or 'none'}, unknown {unknown or 'none'}")
        cases = data["cases"]
        if not isinstance(cases, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in cases.items()
        ):
            raise ValueError("run report 'cases' must map case ids to 'method' or a fallback name")
        return cls(
            method=str(data["method"]),
            task=str(data["task"]),
            cases=dict(cases),
            fallback_share=float(data["fallback_share"]),
            constant=bool(data["constant"]),
            degenerate=bool(data["degenerate"]),
            reason=str(data["reason"]),
        )

    @property
    def fallback_counts(self) -> dict[str, int]:
        """How many cases each fallback replaced (``"method"`` left out)."""
        counts: dict[str, int] = {}
        for used in self.cases.values():
            if used != METHOD:
                counts[used] = counts.get(used, 0) + 1
        return dict(sorted(counts.items()))

    def summary(self) -> str:
        """One table cell: '0/40', '7/40 (training-mean 7)', with ', degenerate' (', constant') when the run is."""
        counts = self.fallback_counts
        text = f"{sum(counts.values())}/{len(self.cases)}"
        if counts:
            text += " (" + ", ".join(f"{name} {count}" for name, count in counts.items()) + ")"
        if self.degenerate:
            text += ", degenerate" + (" (constant)" if self.constant else "")
        return text


# ------------------------------------------------------------------------------------------------ recording
@contextlib.contextmanager
def recording() -> Iterator[dict[str, str]]:
    """Collect the ``note_fallback`` calls made inside the block: yields ``{case_id: fallback name}``."""
    notes: dict[str, str] = {}
    token = _log.set(notes)
    try:
        yield notes
    finally:
        _log.reset(token)


def note_fallback(case_id: str, name: str) -> None:
    """Record that ``case_id``'s prediction is the fallback ``name`` rather than the method's own output."""
    if not name or name == METHOD:
        raise ValueError(f"a fallback needs a name other than {METHOD!r}")
    notes = _log.get()
    if notes is not None:
        notes[str(case_id)] = name


# -------------------------------------------------------------------------------------------------- assess
def _canonical(value):
    """A hashable form of one prediction under which equal predictions compare equal (module docstring)."""
    if type(value).__module__.startswith("SimpleITK"):
        import SimpleITK as sitk

        value = sitk.GetArrayFromImage(value)
    if isinstance(value, np.ndarray) or (isinstance(value, (list, tuple)) and _all_numbers(value)):
        array = np.ascontiguousarray(value if isinstance(value, np.ndarray) else np.asarray(value, dtype=np.float64))
        if array.size == 0:
            return ("empty",)
        if np.all(array == array.flat[0]):
            return ("uniform", float(array.flat[0]))
        # a digest, not the voxels: a run's label maps would otherwise all be held a second time
        return ("array", array.shape, array.dtype.str, hashlib.sha256(array.data).hexdigest())
    if isinstance(value, Mapping):
        if value and _all_numbers(list(value.values())) and len({float(v) for v in value.values()}) == 1:
            return ("uniform", float(next(iter(value.values()))))
        return ("mapping", tuple(sorted((str(key), _canonical(item)) for key, item in value.items())))
    if isinstance(value, (list, tuple)):
        return ("sequence", tuple(_canonical(item) for item in value))
    if isinstance(value, numbers.Number):
        return ("number", float(value))
    return ("other", repr(value))


def _all_numbers(values) -> bool:
    return all(isinstance(v, numbers.Number) and not isinstance(v, bool) for v in values)


def _reason(*, n_cases: int, constant: bool, fallbacks: dict[str, int]) -> str:
    if n_cases == 0:
        return "The run predicted no cases."
    sentences = []
    if constant:
        sentences.append(
            f"Every one of the {n_cases} cases got the same prediction, so the row shows a constant, "
            "not the method reading the images."
        )
    total = sum(fallbacks.values())
    if total * 2 > n_cases:
        used = ", ".join(f"{name} on {count}" for name, count in fallbacks.items())
        sentences.append(
            f"The method's own output was replaced by a fallback on {total} of {n_cases} cases "
            f"({used}), so the row mostly shows the fallback, not the method."
        )
    return " ".join(sentences)


def assess(*, task: str, method: str, cases: dict[str, str], predictions) -> RunReport:
    """The report of one run: ``cases`` maps every predicted case id to ``"method"`` or a fallback name."""
    if set(cases) != set(predictions):
        raise ValueError(f"cases and predictions name different case ids: {sorted(set(cases) ^ set(predictions))[:5]}")
    n_cases = len(cases)
    fallbacks: dict[str, int] = {}
    for used in cases.values():
        if used != METHOD:
            fallbacks[used] = fallbacks.get(used, 0) + 1
    fallbacks = dict(sorted(fallbacks.items()))
    share = sum(fallbacks.values()) / n_cases if n_cases else 0.0
    forms = {_canonical(predictions[case_id]) for case_id in cases}
    constant = n_cases >= 2 and len(forms) == 1
    degenerate = n_cases == 0 or constant or share > 0.5
    reason = _reason(n_cases=n_cases, constant=constant, fallbacks=fallbacks) if degenerate else ""
    return RunReport(
        method=method,
        task=task,
        cases=dict(sorted(cases.items())),
        fallback_share=share,
        constant=constant,
        degenerate=degenerate,
        reason=reason,
    )


# ------------------------------------------------------------------------------------------------------ files
def report_path(predictions_path: Path) -> Path:
    return Path(str(predictions_path) + REPORT_SUFFIX)


def write_report(report: RunReport, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def read_report(path: Path) -> RunReport:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no run report (written by baselines.api.predict)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a run report ({error})") from None
    return RunReport.from_dict(data)
