"""The audit trail: every organizer action reported through `challenges.signals.organizer_action` becomes one
AuditEvent row, inside the sender's transaction (an action rolled back leaves no event)."""

from __future__ import annotations

from typing import Any

from spinebench.challenges.signals import organizer_action

from .models import AuditEvent


def record(
    *,
    challenge: Any,
    actor: Any,
    action: str,
    target: str = "",
    changes: dict | None = None,
    note: str = "",
    **_: Any,
) -> AuditEvent:
    """Store one organizer action; `actor` may be None (a background job) or a user."""
    username = getattr(actor, "get_username", lambda: "")() if actor is not None else ""
    return AuditEvent.objects.create(
        challenge=challenge,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=username or "system",
        action=action,
        target=target[:200],
        changes=changes or {},
        note=note,
    )


def _receive(sender: Any, **kwargs: Any) -> None:
    record(**kwargs)


def connect() -> None:
    organizer_action.connect(_receive, dispatch_uid="spinebench.organizers.audit")
