"""The permission matrix's machinery: which URL patterns exist (walked from the resolver, so a new view is found
without anyone registering it), who asks (the identities of ARCHITECTURE's access policy), what a cell expects and
how a response is judged. The rows themselves are data in tests/security/permission_table.py."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver

#: Who asks, in the order of ARCHITECTURE's "Access policy".
IDENTITIES = (
    "anonymous",
    "outsider",  # signed in, no registration anywhere
    "participant",  # approved registration; the submitter of the world's submissions
    "other_participant",  # approved registration on the same challenge, not the submitter
    "team_mate",  # approved registration, in the participant's team (permission_table.build_world)
    "organizer",  # of this challenge
    "other_organizer",  # organizer of another (hidden) challenge only
    "operator",  # site operator: is_staff and is_superuser
    "worker",  # a remote worker host's token (kind `worker`), no session
)

#: Methods a function view is asked about: Django cannot tell which ones it answers, so both need rows.
FUNCTION_VIEW_METHODS = ("GET", "POST")
IGNORED_METHODS = {"options", "head", "trace"}

#: A cell meaning "302 to the login page" (a page's @login_required).
LOGIN = "login"


@dataclass(frozen=True)
class Route:
    """One URL pattern: its reversible name, the methods it answers, and whether it is a DRF format-suffix variant
    (`/api/phases/1.json`), which runs every row of its name a second time with `format=json`."""

    name: str
    pattern: str
    methods: tuple[str, ...]
    format_suffix: bool


def _methods(callback) -> tuple[str, ...]:
    """The methods a view answers, where the view says so: a DRF viewset's action map, a class-based view's handlers.
    A function view says nothing (FUNCTION_VIEW_METHODS)."""
    actions = getattr(callback, "actions", None)
    if actions:  # DRF adds `head` to this dict at the first GET: ignored like everywhere
        return tuple(sorted(method.upper() for method in actions if method not in IGNORED_METHODS))
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is not None:
        return tuple(
            sorted(
                method.upper()
                for method in view_class.http_method_names
                if method not in IGNORED_METHODS and hasattr(view_class, method)
            )
        )
    return FUNCTION_VIEW_METHODS


def _excluded(pattern: str, callback, namespace: str) -> bool:
    """Left out on purpose: Django's admin (its own staff-only site with its own permission system; only its login
    page, the entrance every identity can reach, is in the matrix) and static/media serving (django.views.static
    .serve: only wired in DEBUG, files without access rules; uploads and datasets are never served that way)."""
    if namespace.startswith("admin:"):
        return True
    return getattr(callback, "__module__", "") == "django.views.static"


def routes() -> list[Route]:
    """Every URL pattern of the project (recursively, DRF router routes and their format-suffix variants included),
    less the exclusions above plus the admin's login."""
    found = []

    def walk(patterns, prefix: str, namespace: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = namespace + (f"{entry.namespace}:" if entry.namespace else "")
                walk(entry.url_patterns, prefix + str(entry.pattern), inner)
                continue
            assert isinstance(entry, URLPattern)
            pattern = prefix + str(entry.pattern)
            if _excluded(pattern, entry.callback, namespace):
                continue
            if not entry.name:
                raise AssertionError(f"URL pattern {pattern!r} has no name: the matrix (and reverse()) need one")
            suffix = "(?P<format>" in pattern or "<drf_format_suffix:format>" in pattern
            found.append(Route(namespace + entry.name, pattern, _methods(entry.callback), suffix))

    walk(get_resolver().url_patterns, "", "")
    found.append(Route("admin:login", "admin/login/", ("GET", "POST"), False))
    return found


def uncovered(rows, found: list[Route]) -> tuple[list[str], list[str]]:
    """(routes/methods without a row, rows whose route/method no longer exists), as `METHOD name` lines."""
    covered = {(row.name, row.method) for row in rows}
    answered = {(route.name, method) for route in found for method in route.methods}
    return (
        [f"{method} {name}" for name, method in sorted(answered - covered)],
        [f"{method} {name}" for name, method in sorted(covered - answered)],
    )


Cell = int | tuple[int, ...] | str


def cells(default: Cell, **overrides: Cell) -> dict[str, Cell]:
    """A row's expectations: `default` for every identity, with per-identity overrides (names from IDENTITIES)."""
    unknown = set(overrides) - set(IDENTITIES)
    if unknown:
        raise ValueError(f"unknown identities {sorted(unknown)}; known: {IDENTITIES}")
    return {identity: overrides.get(identity, default) for identity in IDENTITIES}


@dataclass(frozen=True)
class Row:
    """One request shape: url name + method + which fixture objects fill the URL (`target`, a key of
    permission_table.TARGETS) + optional POST data, and the expected status (or LOGIN) for every identity.
    `format_expect` overrides the expectations for the format-suffix variant, where it behaves differently."""

    name: str
    method: str
    target: str
    expect: dict[str, Cell]
    data: Callable | None = None
    format_expect: dict[str, Cell] | None = None
    why: str = ""
    query: str = ""  # appended to the URL, e.g. "?part=final"

    @property
    def id(self) -> str:
        return f"{self.method} {self.name} [{self.target}]{self.query}"


def matches(cell: Cell, status: int, location: str, login_url: str) -> bool:
    if cell == LOGIN:
        return status == 302 and location.startswith(login_url)
    return status in (cell if isinstance(cell, tuple) else (cell,))


def body_text(response) -> str:
    """Everything a client receives, as text: headers, the body, and the members of a zip body (a download must not
    carry what the page may not show)."""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    parts = [str(dict(response.headers)), raw.decode("utf-8", errors="replace")]
    if raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            parts += [archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist()]
    return "\n".join(parts)


@dataclass
class Secret:
    """A string that must appear only for `visible_to` identities (empty: never, to anyone)."""

    what: str
    text: str
    visible_to: frozenset[str] = field(default_factory=frozenset)


def leaks(text: str, identity: str, secrets: list[Secret]) -> Iterator[str]:
    for secret in secrets:
        if identity not in secret.visible_to and re.search(re.escape(secret.text), text):
            yield f"{secret.what} ({secret.text!r}) reached {identity}"
