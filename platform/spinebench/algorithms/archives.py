"""Validation of an uploaded `docker save` archive (`.tar` or `.tar.gz`) before anything loads it into the engine.
No Django here. Every refusal raises ArchiveError with a message naming the problem, safe to show the submitter.

Checks, in order: every member stays inside the archive root (no absolute path, no `..`, no link pointing out) and
is a regular file, directory or link; the uncompressed size is under the cap (counted while reading, so a gzip
bomb stops early); `manifest.json` lists exactly one image; its config says linux/amd64 and a non-root user.
The image id is the sha256 of the config file, as Docker computes it, so a re-upload is recognised.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .runner import is_root_user

CHUNK = 1 << 20


class ArchiveError(ValueError):
    """The archive is refused; the message says why."""


@dataclass(frozen=True)
class ImageArchive:
    archive_sha256: str
    image_id: str
    repo_tags: list[str]
    user: str
    architecture: str
    os: str
    size_bytes: int
    checks: list[tuple[str, bool, str]]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def normalised_member_path(name: str) -> str:
    """The member's path relative to the archive root, or ArchiveError when it would escape it."""
    if name.startswith("/") or "\\" in name:
        raise ArchiveError(f"archive member {name!r} has an absolute or Windows path; refused")
    normalised = posixpath.normpath(name)
    if normalised == ".." or normalised.startswith("../"):
        raise ArchiveError(f"archive member {name!r} escapes the archive root; refused")
    return normalised


def check_member(member: tarfile.TarInfo) -> str:
    path = normalised_member_path(member.name)
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            raise ArchiveError(f"archive member {member.name!r} links to the absolute path {target!r}; refused")
        base = posixpath.dirname(path) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if resolved == ".." or resolved.startswith("../"):
            raise ArchiveError(f"archive member {member.name!r} links outside the archive ({target!r}); refused")
    elif not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {member.name!r} is a device, fifo or other special file; refused")
    return path


def inspect_archive(path: Path, *, max_image_bytes: int) -> ImageArchive:
    """Validate the archive at `path` and describe the one image it holds."""
    path = Path(path)
    checks: list[tuple[str, bool, str]] = []
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ArchiveError(f"{path.name} is not a tar or tar.gz archive made by `docker save` ({error})") from None
    with archive:
        members: dict[str, tarfile.TarInfo] = {}
        total = 0
        try:
            for member in archive:
                members[check_member(member)] = member
                total += max(member.size, 0)
                if total > max_image_bytes:
                    raise ArchiveError(f"the image is over this phase's size cap of {max_image_bytes // (1 << 20)} "
                                       "MiB uncompressed; refused")
        except (tarfile.TarError, EOFError, OSError) as error:
            raise ArchiveError(f"{path.name} is truncated or corrupt ({error})") from None
        checks.append(("paths stay inside the archive", True, f"{len(members)} members"))
        checks.append(("uncompressed size under the cap", True, f"{total} bytes"))
        manifest = read_json(archive, members, "manifest.json")
        if not isinstance(manifest, list) or len(manifest) != 1:
            count = len(manifest) if isinstance(manifest, list) else "no"
            raise ArchiveError(f"manifest.json must list exactly one image, it lists {count}; `docker save` one image")
        entry = manifest[0]
        config_name = normalised_member_path(str(entry.get("Config", "")))
        config_bytes = read_bytes(archive, members, config_name)
        for layer in entry.get("Layers") or []:
            if normalised_member_path(str(layer)) not in members:
                raise ArchiveError(f"manifest.json names the layer {layer!r}, which is not in the archive")
        checks.append(("exactly one image", True, ", ".join(entry.get("RepoTags") or []) or "untagged"))
    config = json.loads(config_bytes)
    architecture, operating_system = config.get("architecture", ""), config.get("os", "")
    if (operating_system, architecture) != ("linux", "amd64"):
        raise ArchiveError(f"the image is built for {operating_system or '?'}/{architecture or '?'}; "
                           "SpineBench runs linux/amd64 images only")
    checks.append(("platform linux/amd64", True, ""))
    user = (config.get("config") or {}).get("User") or ""
    if is_root_user(user):
        raise ArchiveError("the image runs as root; set a non-root USER in the Dockerfile (e.g. USER 1000)")
    checks.append(("non-root user", True, user))
    return ImageArchive(
        archive_sha256=file_sha256(path),
        image_id="sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        repo_tags=list(entry.get("RepoTags") or []),
        user=user,
        architecture=architecture,
        os=operating_system,
        size_bytes=total,
        checks=checks,
    )


def read_bytes(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    while member is not None and member.issym():  # OCI layouts link blobs; the links were checked above
        member = members.get(posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname)))
    if member is None or not member.isfile():
        raise ArchiveError(f"{name} is missing from the archive; is it a `docker save` archive?")
    handle = archive.extractfile(member)
    return handle.read() if handle else b""


def read_json(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str):
    try:
        return json.loads(read_bytes(archive, members, name))
    except json.JSONDecodeError as error:
        raise ArchiveError(f"{name} in the archive is not valid JSON ({error})") from None
