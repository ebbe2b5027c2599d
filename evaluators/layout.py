"""The SpineBench dataset layout (see docs/formats.md): one folder per split with a manifest, inputs per case and
the evaluator's ground truth. Generators, importers, the platform and the baselines all read and write it here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "dataset.json"
INPUTS = "inputs"
GROUND_TRUTH = "ground_truth"
CASE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SPLITS = ("train", "test")

_NAMES = (
    [f"C{i}" for i in range(1, 8)]
    + [f"T{i}" for i in range(1, 13)]
    + [f"L{i}" for i in range(1, 6)]
    + ["L6", "S1", "S2"]
)
#: VerSe integer label -> vertebra name (S1 = sacrum = 26; S2 = 27 is SpineBench's extension).
VERTEBRA_NAMES: dict[int, str] = {value: name for value, name in enumerate(_NAMES, start=1)}
#: vertebra name -> VerSe integer label.
VERTEBRA_LABELS: dict[str, int] = {name: value for value, name in VERTEBRA_NAMES.items()}


class LayoutError(ValueError):
    """A dataset folder does not follow the SpineBench layout; the message names the file and the problem."""


@dataclass(frozen=True)
class CaseEntry:
    id: str
    group: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    task: str
    split: str
    cases: tuple[CaseEntry, ...]
    domain: str = "train"
    source: str = "generated"
    labels_model_derived: bool = False
    seed: int | None = None

    @property
    def case_ids(self) -> list[str]:
        return [case.id for case in self.cases]

    def groups(self) -> dict[str, str]:
        """case id -> group, for the cases that have one."""
        return {case.id: case.group for case in self.cases if case.group}

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "split": self.split,
            "domain": self.domain,
            "source": self.source,
            "labels_model_derived": self.labels_model_derived,
            "seed": self.seed,
            "cases": [{"id": c.id, "group": c.group, **c.extra} for c in self.cases],
        }


def validate_case_id(case_id: str, *, where: str = "") -> str:
    if not isinstance(case_id, str) or not CASE_ID_PATTERN.match(case_id):
        raise LayoutError(
            f"{where}invalid case id {case_id!r}: expected 1-128 characters of letters, digits, '_', '.', '-'"
        )
    return case_id


def read_manifest(dataset_dir: str | Path) -> Manifest:
    """Read and validate `dataset_dir/dataset.json`."""
    path = Path(dataset_dir) / MANIFEST
    if not path.is_file():
        raise LayoutError(f"{path}: missing dataset manifest")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LayoutError(f"{path}: not valid UTF-8 JSON ({error})") from None
    for key in ("task", "split", "cases"):
        if key not in data:
            raise LayoutError(f"{path}: missing key {key!r}")
    if data["split"] not in SPLITS:
        raise LayoutError(f"{path}: split must be one of {SPLITS}, got {data['split']!r}")
    cases, seen = [], set()
    for index, raw in enumerate(data["cases"]):
        raw = {"id": raw} if isinstance(raw, str) else dict(raw)
        case_id = validate_case_id(raw.pop("id", None), where=f"{path}: cases[{index}]: ")
        if case_id in seen:
            raise LayoutError(f"{path}: cases[{index}]: duplicate case id {case_id!r}")
        seen.add(case_id)
        cases.append(CaseEntry(id=case_id, group=raw.pop("group", None), extra=raw))
    return Manifest(
        task=data["task"],
        split=data["split"],
        cases=tuple(cases),
        domain=data.get("domain", data["split"]),
        source=data.get("source", "generated"),
        labels_model_derived=bool(data.get("labels_model_derived", False)),
        seed=data.get("seed"),
    )


def write_manifest(dataset_dir: str | Path, manifest: Manifest) -> Path:
    path = Path(dataset_dir) / MANIFEST
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest.to_json(), indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def case_input_dir(dataset_dir: str | Path, case_id: str) -> Path:
    return Path(dataset_dir) / INPUTS / validate_case_id(case_id)


def ground_truth_dir(dataset_dir: str | Path) -> Path:
    return Path(dataset_dir) / GROUND_TRUTH
