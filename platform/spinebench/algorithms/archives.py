"""Validation of an uploaded `docker save` archive (`.tar`, `.tar.gz`, `.tar.bz2`, `.tar.xz`) before anything loads it
into the engine, and the tag-free stream that loads it. No Django, no engine. Every refusal raises ArchiveError with
a message naming the problem, safe to show the submitter (quoted archive content is length-capped).

Checks, in order: every member stays inside the archive root (no absolute path, no `..`, no link pointing out) and
is a regular file, directory or link; at most MAX_MEMBERS members; the uncompressed size is under the cap (counted
while reading, so a compression bomb stops early); no single read bigger than MAX_READ_BYTES (a tar header that
declares a 900 MiB long name or pax record is refused, not read); `manifest.json` (at most MAX_JSON_BYTES, the right
shape) lists exactly one image; its config (same limits) says linux/amd64; its `USER` resolves, through the image's
own /etc/passwd and /etc/group read from its layers (users.py), to a uid and gid that are not 0.
Links inside the archive are followed at most MAX_LINK_HOPS times (a.json -> b.json -> a.json is refused).

The image id is the sha256 of the config file, as Docker computes it, so a re-upload is recognised. The archive's
`RepoTags` are never applied: `untagged_stream` yields the archive with them removed from manifest.json, without
the legacy `repositories` file and without image names in an OCI `index.json`, and that stream is what the engine
loads, so an upload can never re-point a tag (e.g. `spinebench/evaluator:latest`).

The stream is read from the stored file in MiB pieces (memory stays flat for a multi-GB archive) and, given the
digest recorded when the upload arrived, hashes the file on the way: a file that changed since (corrupted or
swapped on disk) raises ArchiveError before the manifest is sent, and without a manifest the engine loads nothing.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import json
import lzma
import posixpath
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .users import UserError, needs_account_files, refuse_root, resolve_user, shown

CHUNK = 1 << 20
MAX_MEMBERS = 20_000
MAX_LAYER_MEMBERS = 1_000_000
MAX_JSON_BYTES = 4 << 20
MAX_READ_BYTES = 32 << 20
MAX_LINK_HOPS = 16
ACCOUNT_FILES = ("etc/passwd", "etc/group")
NAME_ANNOTATIONS = ("org.opencontainers.image.ref.name", "io.containerd.image.name")
DROPPED = {"repositories"}  # the legacy format's tags
_UNREADABLE = object()  # an account file that is a link or too large: cannot be resolved from the layers


class ArchiveError(ValueError):
    """The archive is refused; the message says why."""


@dataclass(frozen=True)
class ImageArchive:
    archive_sha256: str
    image_id: str
    repo_tags: list[str]
    user: str
    uid: int
    gid: int
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


# reading the archive with bounds ---------------------------------------------------------------------------------


class BoundedReader(io.RawIOBase):
    """A file object that refuses any single read over MAX_READ_BYTES (tarfile reads a long-name or pax header in
    one read of the size the header declares) and, with `limit`, any read or seek past `limit` bytes of the
    (decompressed) stream, so a compression bomb stops at the cap instead of being inflated to its end."""

    def __init__(self, raw, *, limit: int | None = None, what: str = "the archive"):
        self.raw, self.limit, self.what = raw, limit, what

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self.raw.seekable()

    def _over(self) -> ArchiveError:
        assert self.limit is not None  # only called past a limit
        return ArchiveError(f"{self.what} decompresses to more than {self.limit // (1 << 20)} MiB; refused")

    def seek(self, offset: int, whence: int = 0) -> int:
        if self.limit is not None and whence == 0 and offset > self.limit:
            raise self._over()
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ_BYTES:
            raise ArchiveError(f"{self.what} holds a header that declares {size} bytes of names or metadata; refused")
        data = self.raw.read(size)
        if self.limit is not None and self.raw.tell() > self.limit:
            raise self._over()
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class HashingReader(io.RawIOBase):
    """A seekable file whose whole content is hashed exactly once, in file order, however its reader moves: bytes a
    forward seek skips are read and hashed on the way, bytes read again after a backward seek are not hashed twice.
    `finish()` hashes the rest of the file and gives the hex digest of all of it."""

    def __init__(self, raw):
        self.raw, self.digest, self.hashed = raw, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.raw.tell()

    def _hash_until(self, target: int) -> None:
        """Hash the file from the hashed frontier up to `target` (reading the gap)."""
        position = self.raw.tell()
        self.raw.seek(self.hashed)
        while self.hashed < target:
            piece = self.raw.read(min(CHUNK, target - self.hashed))
            if not piece:
                break
            self.digest.update(piece)
            self.hashed += len(piece)
        self.raw.seek(position)

    def seek(self, offset: int, whence: int = 0) -> int:
        target = self.raw.seek(offset, whence)
        if target > self.hashed:
            self._hash_until(target)
        return target

    def read(self, size: int = -1) -> bytes:
        start = self.raw.tell()
        if start > self.hashed:
            self._hash_until(start)
        data = self.raw.read(size)
        end = start + len(data)
        if end > self.hashed:
            self.digest.update(data[self.hashed - start:])
            self.hashed = end
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def finish(self) -> str:
        self._hash_until(self.raw.seek(0, io.SEEK_END))
        return self.digest.hexdigest()


def decompressed(raw, *, what: str, limit: int | None = None):
    """`raw` (seekable, at its start) as an uncompressed stream: gzip, bzip2 and xz are recognised by magic bytes."""
    magic = raw.read(6)
    raw.seek(0)
    inner: io.BufferedIOBase
    if magic[:2] == b"\x1f\x8b":
        inner = gzip.GzipFile(fileobj=raw, mode="rb")
    elif magic[:3] == b"BZh":
        inner = bz2.BZ2File(raw, mode="rb")
    elif magic == b"\xfd7zXZ\x00":
        inner = lzma.LZMAFile(raw, mode="rb")
    else:
        inner = raw
    return BoundedReader(inner, limit=limit, what=what)


@contextmanager
def reading(what: str):
    """Turn every way a corrupt or hostile archive makes the readers fail into an ArchiveError naming `what`."""
    try:
        yield
    except ArchiveError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError, ValueError, OverflowError) as error:
        raise ArchiveError(f"{what} is truncated or corrupt ({shown(str(error), 200)})") from None


def open_tar(raw, *, what: str, limit: int) -> tarfile.TarFile:
    with reading(what):
        return tarfile.open(fileobj=decompressed(raw, what=what, limit=limit), mode="r:")


def normalised_member_path(name: str) -> str:
    """The member's path relative to the archive root, or ArchiveError when it would escape it."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise ArchiveError(f"archive member {shown(str(name))} has an empty, absolute or Windows path; refused")
    normalised = posixpath.normpath(name)
    if normalised == ".." or normalised.startswith("../"):
        raise ArchiveError(f"archive member {shown(name)} escapes the archive root; refused")
    return normalised


def link_target(member: tarfile.TarInfo, path: str) -> str:
    """Where a link member points, relative to the archive root (symlinks: from the link's folder)."""
    target = member.linkname
    if not target or target.startswith("/"):
        raise ArchiveError(f"archive member {shown(member.name)} links to the absolute path {shown(target)}; refused")
    base = posixpath.dirname(path) if member.issym() else ""
    resolved = posixpath.normpath(posixpath.join(base, target))
    if resolved == ".." or resolved.startswith("../"):
        raise ArchiveError(f"archive member {shown(member.name)} links outside the archive ({shown(target)}); refused")
    return resolved


def check_member(member: tarfile.TarInfo) -> str:
    path = normalised_member_path(member.name)
    if member.issym() or member.islnk():
        link_target(member, path)
    elif member.issparse() or not (member.isfile() or member.isdir()):
        raise ArchiveError(f"archive member {shown(member.name)} is a device, fifo, sparse or other special file; "
                           "refused")
    return path


def resolve_member(members: dict[str, tarfile.TarInfo], name: str) -> tarfile.TarInfo:
    """The regular file `name` names, following links at most MAX_LINK_HOPS times."""
    path = normalised_member_path(name)
    for _ in range(MAX_LINK_HOPS + 1):
        member = members.get(path)
        if member is None or member.isdir():
            raise ArchiveError(f"{shown(name)} is missing from the archive; is it a `docker save` archive?")
        if not (member.issym() or member.islnk()):
            return member
        path = link_target(member, path)
    raise ArchiveError(f"{shown(name)} is a chain of more than {MAX_LINK_HOPS} links (a link loop?); refused")


def read_member(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, *, max_bytes: int) -> bytes:
    member = resolve_member(members, name)
    if not 0 <= member.size <= max_bytes:
        raise ArchiveError(f"{shown(name)} in the archive is {member.size} bytes, over the {max_bytes}-byte limit "
                           "for it; refused")
    with reading(f"{shown(name)} in the archive"):
        handle = archive.extractfile(member)
        data = handle.read(max_bytes + 1) if handle else b""
    if len(data) > max_bytes:
        raise ArchiveError(f"{shown(name)} in the archive is over the {max_bytes}-byte limit for it; refused")
    return data


def read_json(archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> tuple[object, bytes]:
    data = read_member(archive, members, name, max_bytes=MAX_JSON_BYTES)
    return parsed_json(name, data), data


def parsed_json(name: str, data: bytes) -> object:
    try:
        return json.loads(data)
    except RecursionError:
        raise ArchiveError(f"{shown(name)} in the archive nests too deeply; refused") from None
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError
        raise ArchiveError(f"{shown(name)} in the archive is not valid JSON ({shown(str(error), 120)})") from None


# the shape of the JSON members ------------------------------------------------------------------------------------


def manifest_entry(manifest) -> tuple[str, list[str], list[str]]:
    """(config name, layer names, repo tags) of the one image `manifest.json` lists."""
    if not isinstance(manifest, list) or len(manifest) != 1:
        count = len(manifest) if isinstance(manifest, list) else "no"
        raise ArchiveError(f"manifest.json must list exactly one image, it lists {count}; `docker save` one image")
    entry = manifest[0]
    if not isinstance(entry, dict):
        raise ArchiveError("manifest.json has the wrong shape: its entry is not an object with Config and Layers")
    config, layers, tags = entry.get("Config"), entry.get("Layers") or [], entry.get("RepoTags") or []
    if not isinstance(config, str) or not config:
        raise ArchiveError("manifest.json has the wrong shape: Config is not a file name")
    if not isinstance(layers, list) or not all(isinstance(layer, str) and layer for layer in layers):
        raise ArchiveError("manifest.json has the wrong shape: Layers is not a list of file names")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ArchiveError("manifest.json has the wrong shape: RepoTags is not a list of names")
    return config, layers, tags


def config_fields(config) -> tuple[str, str, str]:
    """(os, architecture, user) of an image config, or ArchiveError when it has the wrong shape."""
    if not isinstance(config, dict):
        raise ArchiveError("the image config has the wrong shape: it is not a JSON object")
    runtime = config.get("config") or {}
    if not isinstance(runtime, dict):
        raise ArchiveError("the image config has the wrong shape: its config is not an object")
    os_name, architecture, user = ("" if value is None else value
                                    for value in (config.get("os"), config.get("architecture"), runtime.get("User")))
    if not (isinstance(os_name, str) and isinstance(architecture, str) and isinstance(user, str)):
        raise ArchiveError("the image config has the wrong shape: os, architecture and User must be strings")
    return os_name, architecture, user


# validation -------------------------------------------------------------------------------------------------------


def inspect_archive(path: Path, *, max_image_bytes: int) -> ImageArchive:
    """Validate the archive at `path` and describe the one image it holds."""
    path = Path(path)
    checks: list[tuple[str, bool, str]] = []
    with open(path, "rb") as raw:
        try:
            archive = open_tar(raw, what=path.name, limit=stream_limit(max_image_bytes))
        except ArchiveError as error:
            raise ArchiveError(f"{path.name} is not a tar archive made by `docker save` ({error})") from None
        with archive:
            members, total = list_members(archive, max_image_bytes=max_image_bytes, what=path.name)
            checks.append(("paths stay inside the archive", True, f"{len(members)} members"))
            checks.append(("uncompressed size under the cap", True, f"{total} bytes"))
            for name in ("manifest.json", "index.json"):
                if name in members and not members[name].isfile():
                    raise ArchiveError(f"{name} in the archive is not a regular file; refused")
            manifest, _ = read_json(archive, members, "manifest.json")
            config_name, layers, tags = manifest_entry(manifest)
            config, config_bytes = read_json(archive, members, config_name)
            for layer in layers:
                resolve_member(members, layer)
            if "index.json" in members:
                sanitised_index(read_json(archive, members, "index.json")[0])
            checks.append(("exactly one image", True, shown(", ".join(tags), 200) if tags else "untagged"))
            operating_system, architecture, user = config_fields(config)
            if (operating_system, architecture) != ("linux", "amd64"):
                raise ArchiveError(f"the image is built for {shown(operating_system or '?')}/"
                                   f"{shown(architecture or '?')}; SpineBench runs linux/amd64 images only")
            checks.append(("platform linux/amd64", True, ""))
            uid, gid = image_user(archive, members, layers, user, max_image_bytes=max_image_bytes)
    checks.append(("non-root user", True, f"{shown(user)} = uid {uid}, gid {gid}"))
    return ImageArchive(
        archive_sha256=file_sha256(path),
        image_id="sha256:" + hashlib.sha256(config_bytes).hexdigest(),
        repo_tags=[tag[:200] for tag in tags[:10]],  # recorded for information only, never applied
        user=user,
        uid=uid,
        gid=gid,
        architecture=architecture,
        os=operating_system,
        size_bytes=total,
        checks=checks,
    )


def stream_limit(max_image_bytes: int) -> int:
    """Bytes of uncompressed tar stream allowed for an image of at most `max_image_bytes`: its members plus room
    for their headers."""
    return max_image_bytes + MAX_MEMBERS * 4 * tarfile.BLOCKSIZE + MAX_READ_BYTES


def list_members(archive: tarfile.TarFile, *, max_image_bytes: int,
                 what: str) -> tuple[dict[str, tarfile.TarInfo], int]:
    members: dict[str, tarfile.TarInfo] = {}
    total = 0
    with reading(what):
        for count, member in enumerate(archive, start=1):
            if count > MAX_MEMBERS:
                raise ArchiveError(f"the archive has more than {MAX_MEMBERS} members; `docker save` one image")
            members[check_member(member)] = member
            total += max(member.size, 0)
            if total > max_image_bytes:
                raise ArchiveError(f"the image is over this phase's size cap of {max_image_bytes // (1 << 20)} "
                                   "MiB uncompressed; refused")
    return members, total


def image_user(archive, members, layers: list[str], user: str, *, max_image_bytes: int) -> tuple[int, int]:
    """(uid, gid) of the image's USER, refusing root; reads /etc/passwd and /etc/group from the layers only when
    the USER is not a numeric uid:gid."""
    needs_passwd, needs_group = needs_account_files(user)
    files: dict[str, object] = {name: None for name in ACCOUNT_FILES}
    if needs_passwd or needs_group:
        files = account_files(archive, members, layers, max_image_bytes=max_image_bytes)
    for name, needed in zip(ACCOUNT_FILES, (needs_passwd, needs_group), strict=True):
        if needed and files[name] is _UNREADABLE:
            raise ArchiveError(f"the image's USER {shown(user)} cannot be resolved: /{name} in the image is a link or "
                               "over 1 MiB; use a numeric USER uid:gid")
    try:
        passwd, group = files["etc/passwd"], files["etc/group"]
        # _UNREADABLE was refused above wherever the file is needed; where it is not, resolve_user never reads it.
        uid, gid = resolve_user(user, passwd=passwd if isinstance(passwd, bytes) else None,
                                group=group if isinstance(group, bytes) else None)
        refuse_root(user, uid, gid)
    except UserError as error:
        raise ArchiveError(str(error)) from None
    return uid, gid


def account_files(archive, members, layers: list[str], *, max_image_bytes: int) -> dict[str, object]:
    """/etc/passwd and /etc/group as the image's layers leave them: bytes, None (absent) or _UNREADABLE. Applies
    each layer in order with overlay semantics: whiteouts (`.wh.NAME`) and opaque folders (`.wh..wh..opq`) hide
    what lower layers had."""
    state: dict[str, object] = {name: None for name in ACCOUNT_FILES}
    seen = 0
    for layer in layers:
        member = resolve_member(members, layer)
        with reading(f"the layer {shown(layer)}"):
            handle = archive.extractfile(member)
            inner = open_tar(handle, what=f"the layer {shown(layer)}", limit=max_image_bytes)
            hidden: set[str] = set()
            found: dict[str, object] = {}
            with inner:
                for entry in inner:
                    seen += 1
                    if seen > MAX_LAYER_MEMBERS:
                        raise ArchiveError(f"the image's layers hold more than {MAX_LAYER_MEMBERS} files; refused")
                    name = posixpath.normpath("/" + entry.name).lstrip("/")
                    if name in (".wh.etc", "etc/.wh..wh..opq"):
                        hidden.update(ACCOUNT_FILES)
                    elif name == "etc" and not entry.isdir():
                        found.update({file: _UNREADABLE for file in ACCOUNT_FILES})
                    elif name.startswith("etc/.wh.") and "etc/" + name[len("etc/.wh."):] in ACCOUNT_FILES:
                        hidden.add("etc/" + name[len("etc/.wh."):])
                    elif name in ACCOUNT_FILES:
                        found[name] = account_file(inner, entry)
        for name in hidden:
            state[name] = None
        state.update(found)
    return state


def account_file(layer: tarfile.TarFile, entry: tarfile.TarInfo) -> object:
    if entry.isdir():
        return None
    if not entry.isfile() or not 0 <= entry.size <= 1 << 20:
        return _UNREADABLE
    handle = layer.extractfile(entry)
    return handle.read(entry.size) if handle else b""


# loading without tags ---------------------------------------------------------------------------------------------


def sanitised_manifest(manifest) -> bytes:
    """Only the config and the layers: no RepoTags (never applied), no LayerSources (nothing fetched from elsewhere)."""
    config, layers, _ = manifest_entry(manifest)
    return json.dumps([{"Config": config, "RepoTags": None, "Layers": layers}]).encode()


def sanitised_index(index) -> bytes:
    """An OCI index.json without the annotations that name images (newer engines tag the image after them)."""
    if not isinstance(index, dict) or not isinstance(index.get("manifests", []), list):
        raise ArchiveError("index.json has the wrong shape: manifests is not a list")
    manifests = []
    for descriptor in index.get("manifests", []):
        if not isinstance(descriptor, dict) or not isinstance(descriptor.get("annotations") or {}, dict):
            raise ArchiveError("index.json has the wrong shape: a manifest descriptor is not an object")
        annotations = {key: value for key, value in (descriptor.get("annotations") or {}).items()
                       if key not in NAME_ANNOTATIONS}
        manifests.append({**descriptor, "annotations": annotations})
    return json.dumps({**index, "manifests": manifests}).encode()


def untagged_stream(path: Path, *, max_image_bytes: int, sha256: str | None = None) -> Iterator[bytes]:
    """The archive as an uncompressed tar stream for the engine's load endpoint, with no name in it: manifest.json
    without RepoTags, no `repositories`, index.json without image names. One pass over the archive (the rewritten
    JSON members go last; inspect_archive requires them to be regular files). Call after inspect_archive accepted
    the archive; members are checked again on the way. With `sha256` (the digest recorded at upload) the file is
    hashed in the same pass and a mismatch raises ArchiveError before the manifest goes out."""
    replaced: dict[str, bytes] = {}
    with open(path, "rb") as handle:
        raw = HashingReader(handle)
        archive = open_tar(raw, what=Path(path).name, limit=stream_limit(max_image_bytes))
        with archive, reading(Path(path).name):
            total = 0
            for count, member in enumerate(archive, start=1):
                name = check_member(member)
                total += max(member.size, 0)
                if count > MAX_MEMBERS or total > max_image_bytes:
                    raise ArchiveError("the archive changed since it was validated; refused")
                if name in DROPPED:
                    continue
                if name in ("manifest.json", "index.json"):
                    replaced[name] = read_member(archive, {name: member}, name, max_bytes=MAX_JSON_BYTES)
                    continue
                yield from member_blocks(archive, member)
        if sha256 is not None and raw.finish() != sha256:
            raise ArchiveError("the stored archive no longer matches the SHA-256 recorded when it was uploaded "
                               "(changed or corrupted on disk); refused")
    if "manifest.json" not in replaced:
        raise ArchiveError("manifest.json is missing from the archive")
    for name, data in replaced.items():
        document = parsed_json(name, data)
        sanitised = sanitised_manifest(document) if name == "manifest.json" else sanitised_index(document)
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = len(sanitised), 0o644, 0
        yield info.tobuf(tarfile.PAX_FORMAT)
        yield sanitised + padding(len(sanitised))
    yield b"\0" * (2 * tarfile.BLOCKSIZE)


def member_blocks(archive: tarfile.TarFile, member: tarfile.TarInfo) -> Iterator[bytes]:
    yield member.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    if not member.isfile():
        return
    with reading(shown(member.name)):
        handle = archive.extractfile(member)
        if handle is None:
            raise ArchiveError(f"{shown(member.name)} cannot be read from the archive")
        remaining = member.size
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                raise ArchiveError(f"{shown(member.name)} is truncated")
            remaining -= len(chunk)
            yield chunk
    yield padding(member.size)


def padding(size: int) -> bytes:
    return b"\0" * (-size % tarfile.BLOCKSIZE)
