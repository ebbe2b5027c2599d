"""Which uid and gid an image's `USER` runs as, worked out the way the engine does it, so that root is refused
however it is spelled (`0`, `00`, `+0`, `-0`, `0000`, `root`, a name that the image's /etc/passwd maps to uid 0,
`1000:0`, a group name that /etc/group maps to gid 0). No Django, no engine: the callers hand in the bytes of the
image's /etc/passwd and /etc/group (read from the archive's layers, or from the engine).

The rules mirror runc's `GetExecUser` (what dockerd uses): the spec is split on `:` into user and group (extra
fields ignored); a part that Go's `strconv.Atoi` accepts is a number, anything else a name; a numeric user is the
uid whether or not passwd lists it; a user name must be in passwd (first match wins), and its passwd line gives the
gid; a numeric user that passwd does not list gets gid 0; an empty user means uid 0; an explicit group replaces the
gid (a name must be in /etc/group). Unparsable numbers in passwd/group lines count as 0, as in runc.

The resolved pair is then passed to the engine as an explicit numeric `--user uid:gid`, so what runs is exactly
what was checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_ID = (1 << 31) - 1
MAX_ACCOUNT_FILE_BYTES = 1 << 20  # /etc/passwd or /etc/group larger than this is refused, not parsed
_GO_INT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)
_INT64 = (1 << 63) - 1


class UserError(ValueError):
    """The image's user cannot run here (root, or not resolvable); the message is safe to show the submitter."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Group:
    name: str
    gid: int


def go_atoi(text: str) -> int | None:
    """Go's strconv.Atoi: an optional sign and ASCII digits, nothing else (no spaces, no underscores); None when
    it fails. Out-of-range values are clamped, as ParseInt reports them (runc ignores the error in passwd lines)."""
    if not _GO_INT.match(text):
        return None
    return max(-_INT64 - 1, min(_INT64, int(text)))


def _lines(data: bytes) -> list[list[str]]:
    if len(data) > MAX_ACCOUNT_FILE_BYTES:
        raise UserError(f"the image's account file is over {MAX_ACCOUNT_FILE_BYTES} bytes; refused")
    lines = (line.strip(b" \t\r\n\v\f") for line in data.split(b"\n"))  # Go's line scanner, not str.splitlines
    return [line.decode("utf-8", errors="surrogateescape").split(":") for line in lines if line]


def _field(parts: list[str], index: int) -> str:
    return parts[index] if index < len(parts) else ""


def parse_passwd(data: bytes) -> list[Account]:
    """name:password:uid:gid:gecos:home:shell lines; a missing or unparsable number is 0 (as runc reads them)."""
    return [Account(name=_field(parts, 0), uid=go_atoi(_field(parts, 2)) or 0, gid=go_atoi(_field(parts, 3)) or 0)
            for parts in _lines(data)]


def parse_group(data: bytes) -> list[Group]:
    return [Group(name=_field(parts, 0), gid=go_atoi(_field(parts, 2)) or 0) for parts in _lines(data)]


def needs_account_files(spec: str) -> tuple[bool, bool]:
    """(needs /etc/passwd, needs /etc/group) to resolve `spec`: a fully numeric `uid:gid` needs neither."""
    user, group = split_spec(spec)
    needs_passwd = not (go_atoi(user) is not None and go_atoi(group) is not None)
    return needs_passwd, bool(group) and go_atoi(group) is None


def split_spec(spec: str) -> tuple[str, str]:
    parts = (spec or "").split(":")
    return parts[0], (parts[1] if len(parts) > 1 else "")


def resolve_user(spec: str, *, passwd: bytes | None, group: bytes | None) -> tuple[int, int]:
    """(uid, gid) the engine would run `spec` as. `passwd`/`group` None: the image has no such file (or it could
    not be read, in which case the caller passes None only when `needs_account_files` says it is not needed)."""
    user_arg, group_arg = split_spec(spec)
    uid_number, gid_number = go_atoi(user_arg), go_atoi(group_arg)
    accounts = parse_passwd(passwd) if passwd is not None else []
    if user_arg == "":
        matches = [account for account in accounts if account.uid == 0]
    elif uid_number is not None:
        matches = [account for account in accounts if account.uid == uid_number]
    else:
        matches = [account for account in accounts if account.name == user_arg]
    if matches:
        uid, gid = matches[0].uid, matches[0].gid
    elif user_arg == "":
        uid, gid = 0, 0
    elif uid_number is None:
        raise UserError(f"the image's USER {shown(user_arg)} is not a number and not a name in its /etc/passwd")
    else:
        uid, gid = uid_number, 0
    if not 0 <= uid <= MAX_ID:
        raise UserError(f"the image's USER {shown(user_arg)} is outside the uid range 0..{MAX_ID}")
    if group_arg:
        groups = parse_group(group) if group is not None else []
        if gid_number is not None:
            gid = gid_number
        else:
            named = [entry for entry in groups if entry.name == group_arg]
            if not named:
                raise UserError(f"the image's USER group {shown(group_arg)} is not a number and not a name in its "
                                "/etc/group")
            gid = named[0].gid
        if not 0 <= gid <= MAX_ID:
            raise UserError(f"the image's USER group {shown(group_arg)} is outside the gid range 0..{MAX_ID}")
    return uid, gid


def refuse_root(spec: str, uid: int, gid: int) -> None:
    """UserError when the resolved user or group is root (uid 0 or gid 0)."""
    if uid == 0:
        raise UserError(f"the image runs as root (USER {shown(spec)} is uid 0); set a non-root USER in the "
                        "Dockerfile, e.g. USER 1000:1000")
    if gid == 0:
        raise UserError(f"the image runs with the root group (USER {shown(spec)} is gid 0); set a non-root group, "
                        f"e.g. USER {uid}:{uid}")


def shown(text: str, limit: int = 64) -> str:
    """A quoted, length-capped rendering of untrusted text for messages."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
