"""Checks and a readable summary of a baseline's configuration dataclass (a preset plus overrides).

The method modules declare their settings as typed dataclasses; ``validate_config`` holds every value to its
annotation (``int``, ``float``, ``bool``, ``str``, ``Literal``, fixed and variadic ``tuple``, ``X | None`` and nested
dataclasses), refuses negative single numbers (rates, weights, counts and sizes; only tuples such as rotation angles
hold signed values) and requires sizes and counts
(names ending in ``size``, ``batch``, ``steps``, ``epochs``, ``iterations``, ``channels`` or starting with ``num_``) to
be positive, so a typo in a preset or an override fails before training starts, naming the setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal

POSITIVE_SUFFIXES = ("size", "batch", "steps", "epochs", "iterations", "channels")


class PresetError(ValueError):
    """A configuration value does not match its declared type or range."""


def _is_positive_name(name: str) -> bool:
    return name.endswith(POSITIVE_SUFFIXES) or name.startswith("num_")


def _matches(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, arg) for arg in args)
    if origin is Literal:
        return value in args
    if origin is tuple:
        if not isinstance(value, tuple):
            return False
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(item, args[0]) for item in value)
        return len(value) == len(args) and all(_matches(item, arg) for item, arg in zip(value, args, strict=True))
    if origin in (list, dict):
        return isinstance(value, origin)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # an annotation this checker does not know: the method module validates it


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, tuple):
        return [number for item in value for number in _numbers(item)]
    return []


def validate_config(config: Any, *, where: str | None = None) -> None:
    """Raise PresetError naming the first setting whose value does not fit; recurse into nested dataclasses. A size
    or count that a Config documents as "0: use another setting" is named in its class attribute
    ``ZERO_MEANS_DEFAULT`` and may be 0."""
    where = where or type(config).__qualname__
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        value, hint, name = getattr(config, field.name), hints.get(field.name, Any), f"{where}.{field.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate_config(value, where=name)
            continue
        if not _matches(value, hint):
            generic = typing.get_origin(hint) is not None
            shown = str(hint).replace("typing.", "") if generic else getattr(hint, "__name__", str(hint))
            raise PresetError(f"{name}: expected {shown}, got {type(value).__name__} {value!r}")
        numbers = _numbers(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            raise PresetError(f"{name}: must not be negative, got {value!r}")
        zero_allowed = field.name in getattr(type(config), "ZERO_MEANS_DEFAULT", ()) and value == 0
        if _is_positive_name(field.name) and not zero_allowed and any(number <= 0 for number in numbers):
            raise PresetError(f"{name}: a size or count must be positive, got {value!r}")


def summarise(config: Any, *, indent: str = "") -> list[str]:
    """One ``name = value`` line per setting, nested dataclasses indented under their name."""
    lines = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            lines.append(f"{indent}{field.name}:")
            lines += summarise(value, indent=indent + "  ")
        else:
            lines.append(f"{indent}{field.name} = {value!r}")
    return lines
