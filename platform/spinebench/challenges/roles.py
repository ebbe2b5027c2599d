"""Per-request memo of the role lookups (`Challenge.is_organizer`, `Challenge.is_participant`): a page asks the same
question of the same challenge and user many times (the view, the access policy's rules, the context processors,
template tags), and each answer is one query. Inside `remembered_roles()` (which
`challenges.middleware.RoleMemoMiddleware` wraps around every request) each answer is looked up once; outside it
(Celery tasks, shells, tests calling the models directly) every call queries, as before.

The memo is dropped whenever a registration or a challenge's organizers change (`forget_roles`, connected to their
signals at app-ready time), so a request that changes a role and asks again sees the change. Writes that send no
signal (`QuerySet.update`) must not change roles inside a request; none does today."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_memo: ContextVar[dict | None] = ContextVar("spinebench_role_memo", default=None)


@contextmanager
def remembered_roles() -> Iterator[None]:
    """Remember role answers until the block ends (one request). Each thread and asyncio task has its own."""
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def remembered(key: tuple, lookup: Callable[[], bool]) -> bool:
    """`lookup()`, asked once per `key` inside `remembered_roles()`; every time outside it."""
    memo = _memo.get()
    if memo is None:
        return lookup()
    if key not in memo:
        memo[key] = lookup()
    return memo[key]


def forget_roles(**_signal_arguments) -> None:
    """Drop every remembered answer (a signal receiver: a registration or an organizer list changed)."""
    memo = _memo.get()
    if memo is not None:
        memo.clear()
