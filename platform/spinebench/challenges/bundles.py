"""Challenge bundles: a folder with `challenge.yaml` (and files it names) that creates or updates a challenge, its
datasets and phases. The file's shape, its two profiles (the CLI's trusted one, and the one for uploaded bundles)
and its key-exact error messages are in `bundle_schema`; docs/bundles.md is rendered from it
(`python manage.py bundle_docs`). This module reads a bundle and turns its challenge and phases into rows; the
datasets app, above this one, builds the dataset folders, links them to the phases and runs the whole import
(`spinebench.datasets.bundles.import_bundle`).

A phase's `container:` mapping belongs to the algorithms app, which sits above this one: it registers its handler
with `register_container_handler` when it is ready, so this module never imports it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from .bundle_schema import (
    BUNDLE_FILE,
    LEADERBOARD_FIELDS,
    PHASE_FIELDS,
    TRUSTED,
    BundleError,
    Profile,
    validate_bundle,
)
from .models import Challenge, Phase

__all__ = [
    "BUNDLE_FILE", "BundleError", "apply_container", "error_message", "keyed_error", "load_bundle",
    "register_container_handler", "save_challenge", "save_phase",
]

#: apply(phase, spec, *, where) for a phase's `container:` mapping; set by the algorithms app at ready time.
ContainerHandler = Callable[..., object]
_container_handler: ContainerHandler | None = None


def register_container_handler(handler: ContainerHandler) -> None:
    global _container_handler
    _container_handler = handler


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


def save_challenge(spec: dict, *, bundle_dir: Path, where: str) -> Challenge:
    """Create or update the challenge described by a validated bundle's `challenge:` mapping (and its organizers)."""
    description = spec.get("description", "")
    if "description_file" in spec:
        description_path = Path(bundle_dir) / spec["description_file"]
        if not description_path.is_file():
            raise BundleError(f"{where}: challenge.description_file: {description_path} not found")
        description = description_path.read_text(encoding="utf-8")
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
    return challenge


def save_phase(challenge: Challenge, spec: dict, *, where: str) -> Phase:
    """Create or update a phase from a validated bundle's phase mapping, without its datasets (the datasets app
    links them, `spinebench.datasets.bundles`) and without its `container:` mapping (`apply_container`)."""
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
    _check(phase, where, fields={**PHASE_FIELDS, **{f"leaderboard.{k}": f for k, f in LEADERBOARD_FIELDS.items()}})
    phase.save()
    return phase


def apply_container(phase: Phase, spec: dict, *, where: str) -> None:
    """Hand a phase's `container:` mapping, if it has one, to the handler the algorithms app registered."""
    if "container" not in spec:
        return
    if _container_handler is None:
        raise BundleError(f"{where}.container: container settings need the spinebench.algorithms app")
    _container_handler(phase, spec["container"], where=f"{where}.container")


def error_message(error) -> str:
    """A ValidationError (or any error) as one line, each field's messages after its name."""
    if isinstance(error, ValidationError) and hasattr(error, "message_dict"):
        return "; ".join(f"{field}: {' '.join(messages)}" for field, messages in error.message_dict.items())
    return " ".join(getattr(error, "messages", [str(error)]))


def _check(instance, where: str, fields: dict | None = None) -> None:
    """full_clean, naming the bundle key (not the model field) of the first problem."""
    try:
        instance.full_clean(exclude=["challenge"] if isinstance(instance, Phase) else None)
    except ValidationError as error:
        raise keyed_error(error, where, fields=fields) from None


def keyed_error(error: ValidationError, where: str, *, fields: dict | None = None) -> BundleError:
    """The BundleError for a model's ValidationError: its first problem, named by the bundle key (`fields` maps
    bundle keys to model fields where they differ) under `where`."""
    reverse = {field: key for key, field in (fields or {}).items()}
    if hasattr(error, "message_dict"):
        field, messages = next(iter(error.message_dict.items()))
        return BundleError(f"{where}.{reverse.get(field, field)}: {' '.join(messages)}")
    return BundleError(f"{where}: {' '.join(error.messages)}")
