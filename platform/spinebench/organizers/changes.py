"""Before/after of an edit for the audit trail: the changed fields only, as JSON-serialisable values."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any


def json_value(value: Any) -> Any:
    """Datetimes as ISO 8601, files as their stored name, everything JSON already knows as it is."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "storage"):  # a FieldFile
        return value.name or ""
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


def field_values(instance: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: json_value(getattr(instance, name)) for name in fields}


def changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[Any]]:
    """field -> [before, after] for every field whose value differs (a new object: before is None)."""
    return {name: [before.get(name), value] for name, value in after.items() if before.get(name) != value}
