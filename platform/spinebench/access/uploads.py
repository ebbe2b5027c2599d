"""Chunked upload sessions: only their owner may see, extend, finalise, abort or use one."""

from __future__ import annotations


def can_use_upload_session(session, user) -> bool:
    """The owner only: not organizers, not operators (a session holds a person's unfinished file, nothing anyone
    else acts on), and never a worker token (it authenticates as no user)."""
    return bool(user and user.is_authenticated and session.owner_id == user.pk)
