"""Signals the challenges app sends to the apps above it, which it never imports (docs/architecture.md)."""

from django.dispatch import Signal

#: Sent with `phase_pk=` when a phase's leaderboard must be ranked again: a submission was scored or published, or
#: an organizer asked for it. The leaderboards app ranks it at once, inside the sender's transaction; an error in
#: ranking reaches the sender.
ranking_changed = Signal()

#: Sent by any app when an organizer (or a site operator) acts on a challenge, so that the organizers app records it
#: in the audit trail without being imported. Send it through `report_organizer_action`, which names the arguments.
organizer_action = Signal()


def report_organizer_action(
    *,
    challenge,
    actor,
    action: str,
    target: str = "",
    changes: dict | None = None,
    note: str = "",
) -> None:
    """Record one organizer action on `challenge` in the audit trail.

    `action` is a short dotted verb ("phase.update", "submission.hide", "leaderboard.reveal"), `target` names the
    object ("phase 12"), `changes` maps each changed field to `[before, after]` (JSON-serialisable values), `note`
    is free text (a reason, a message)."""
    organizer_action.send(
        sender=None,
        challenge=challenge,
        actor=actor,
        action=action,
        target=target,
        changes=changes or {},
        note=note,
    )
