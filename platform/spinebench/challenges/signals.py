"""Signals the challenges app sends to the apps above it, which it never imports (docs/architecture.md)."""

from django.dispatch import Signal

#: Sent with `phase_pk=` when a phase's leaderboard must be ranked again: a submission was scored or published, or
#: an organizer asked for it. The leaderboards app ranks it at once, inside the sender's transaction; an error in
#: ranking reaches the sender.
ranking_changed = Signal()
