"""Reading untrusted zip archives with every loop and every byte bounded (Django-free, so the fuzz tests drive it
directly).

`check_zip` walks the central directory once (entry count checked from the end-of-central-directory record before
the directory is even parsed), refuses anything extraction could trip on later — links and device files, encrypted
members, compression methods this server cannot decompress, names that escape, are too long or are both a file and a
folder — and, with `verify_data`, decompresses every member into nothing to prove the data and CRCs are sound while
counting the bytes actually produced. `extract_zip` does the same into a folder, writing only below it and never
following or creating a link. Every problem is a `ZipRefused` whose message names the member (capped).
"""

from __future__ import annotations

import lzma
import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

READ_CHUNK = 1 << 16
COMPONENT_MAX_BYTES = 255  # the common file-system limit for one name
PATH_MAX_BYTES = 1024
DEPTH_MAX = 32
QUOTE_MAX = 80
SUPPORTED_METHODS = {
    zipfile.ZIP_STORED: "stored",
    zipfile.ZIP_DEFLATED: "deflate",
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
}
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIGNATURE = b"PK\x05\x06"
_DATA_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
)


class ZipRefused(ValueError):
    """The archive cannot be accepted; the message names the archive and the member and is safe to show."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int
    max_total_bytes: int


def quote(value: str, limit: int = QUOTE_MAX) -> str:
    """repr() of untrusted text, cut to `limit` characters with an ellipsis so a message never carries a megabyte."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _human(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB"):
        if value < 1024:
            return f"{size} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def declared_entry_count(handle) -> int | None:
    """The entry count of the end-of-central-directory record (None when there is none or it says ZIP64)."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    tail_size = min(end, _EOCD.size + 0xFFFF)
    handle.seek(end - tail_size)
    tail = handle.read(tail_size)
    handle.seek(0)
    position = tail.rfind(_EOCD_SIGNATURE)
    if position < 0 or position + _EOCD.size > len(tail):
        return None
    entries = _EOCD.unpack_from(tail, position)[4]
    return None if entries == 0xFFFF else entries


def _parts(member: zipfile.ZipInfo, *, where: str) -> tuple[str, ...]:
    name = member.filename
    shown = f"{where}: member {quote(name)}"
    if "\x00" in name or any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise ZipRefused(f"{shown} has control characters in its name")
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ZipRefused(f"{shown} points outside the archive (absolute path or backslash)")
    parts = tuple(PurePosixPath(name).parts) if name.strip("/") else ()
    if not parts or any(part in (".", "..") for part in name.rstrip("/").split("/")) or "//" in name:
        raise ZipRefused(f"{shown} points outside the archive or has an empty, '.' or '..' path component")
    if len(name.encode("utf-8")) > PATH_MAX_BYTES or len(parts) > DEPTH_MAX:
        raise ZipRefused(f"{shown} has a path longer than {PATH_MAX_BYTES} bytes or deeper than {DEPTH_MAX} folders")
    long = next((part for part in parts if len(part.encode("utf-8")) > COMPONENT_MAX_BYTES), None)
    if long is not None:
        raise ZipRefused(f"{shown} has a name of {len(long)} characters; at most {COMPONENT_MAX_BYTES} bytes per name")
    return parts


def _check_member(member: zipfile.ZipInfo, *, where: str) -> None:
    shown = f"{where}: member {quote(member.filename)}"
    mode = member.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise ZipRefused(f"{shown} is a symbolic link; links are not accepted")
    if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        raise ZipRefused(f"{shown} is not a regular file or folder")
    if member.flag_bits & 0x1:
        raise ZipRefused(f"{shown} is encrypted; upload an archive without a password")
    if member.compress_type not in SUPPORTED_METHODS:
        raise ZipRefused(
            f"{shown} uses compression method {member.compress_type}; use {', '.join(SUPPORTED_METHODS.values())}"
        )


def _open(handle, *, where: str, limits: ZipLimits) -> zipfile.ZipFile:
    try:
        declared = declared_entry_count(handle)
    except OSError:
        raise ZipRefused(f"{where}: could not be read") from None
    if declared is not None and declared > limits.max_entries:
        raise ZipRefused(f"{where}: {declared} entries, more than the {limits.max_entries} accepted")
    try:
        return zipfile.ZipFile(handle)
    except zipfile.BadZipFile:
        raise ZipRefused(f"{where}: not a zip archive") from None
    except _DATA_ERRORS:
        raise ZipRefused(f"{where}: not a readable zip archive (damaged central directory)") from None


def _plan(archive: zipfile.ZipFile, *, where: str, limits: ZipLimits) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every member with its path parts, after the structural checks; one bounded pass over the directory."""
    members = archive.infolist()
    if len(members) > limits.max_entries:
        raise ZipRefused(f"{where}: {len(members)} entries, more than the {limits.max_entries} accepted")
    if not members:
        raise ZipRefused(f"{where}: the archive is empty")
    files: set[tuple[str, ...]] = set()
    folders: set[tuple[str, ...]] = set()
    declared_total = 0
    plan = []
    for member in members:
        _check_member(member, where=where)
        parts = _parts(member, where=where)
        shown = f"{where}: member {quote(member.filename)}"
        if parts in files or (not member.is_dir() and parts in folders):
            raise ZipRefused(f"{shown} appears twice, or is both a file and a folder")
        for depth in range(1, len(parts)):
            if parts[:depth] in files:
                raise ZipRefused(f"{shown} is inside {quote('/'.join(parts[:depth]))}, which is a file")
            folders.add(parts[:depth])
        if member.is_dir():
            folders.add(parts)
        else:
            files.add(parts)
            declared_total += member.file_size
            if declared_total > limits.max_total_bytes:
                raise ZipRefused(f"{where}: unpacks to more than {_human(limits.max_total_bytes)}")
        plan.append((member, parts))
    return plan


def _copy_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, sink, *, budget: int, where: str, limits: ZipLimits
) -> int:
    """Decompress one member into `sink` (None: discard), at most `budget` bytes; returns the bytes produced."""
    produced = 0
    try:
        with archive.open(member) as source:
            while chunk := source.read(READ_CHUNK):
                produced += len(chunk)
                if produced > budget:
                    raise ZipRefused(f"{where}: unpacks to more than {_human(limits.max_total_bytes)}")
                if sink is not None:
                    sink.write(chunk)
    except ZipRefused:
        raise
    except zipfile.BadZipFile as problem:
        detail = "bad CRC-32" if "CRC" in str(problem) else "damaged data"
        raise ZipRefused(f"{where}: member {quote(member.filename)} is corrupt ({detail})") from None
    except _DATA_ERRORS:
        raise ZipRefused(f"{where}: member {quote(member.filename)} could not be decompressed (damaged data)") from None
    return produced


def check_zip(handle, *, name: str, limits: ZipLimits, verify_data: bool = True) -> list[str]:
    """The member names of a sound archive (see the module docstring), else ZipRefused. `handle`: a seekable binary
    file, left at position 0."""
    archive = _open(handle, where=name, limits=limits)
    with archive:
        plan = _plan(archive, where=name, limits=limits)
        if verify_data:
            budget = limits.max_total_bytes
            for member, _ in plan:
                if not member.is_dir():
                    budget -= _copy_member(archive, member, None, budget=budget, where=name, limits=limits)
    handle.seek(0)
    return [member.filename for member, _ in plan]


def extract_zip(handle, destination: Path, *, name: str, limits: ZipLimits) -> Path:
    """Unpack a sound archive into the existing, empty folder `destination` (files and folders only, each created
    new: nothing outside it is ever written or followed)."""
    root = Path(destination).resolve()
    archive = _open(handle, where=name, limits=limits)
    with archive:
        budget = limits.max_total_bytes
        for member, parts in _plan(archive, where=name, limits=limits):
            target = root.joinpath(*parts)
            if not target.resolve().is_relative_to(root):  # cannot happen after _parts; a second wall
                raise ZipRefused(f"{name}: member {quote(member.filename)} points outside the archive")
            try:
                if member.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError as problem:
                raise ZipRefused(
                    f"{name}: member {quote(member.filename)} could not be unpacked ({problem.strerror})"
                ) from None
            with os.fdopen(descriptor, "wb") as sink:
                budget -= _copy_member(archive, member, sink, budget=budget, where=name, limits=limits)
    return root
