"""Sending a large file (an algorithm archive, a zip of per-case predictions) through the server's resumable upload
sessions, the protocol the submission page's JavaScript speaks too:

    POST /api/uploads/ {kind, size, sha256, filename}   -> the session (its id and offset)
    PUT  /api/uploads/{id}/?offset=N                     one chunk, with its SHA-256 in Upload-Chunk-SHA256
    HEAD /api/uploads/{id}/                              Upload-Offset: where to go on after a lost connection
    POST /api/uploads/{id}/finalise/                     the server checks the whole file's sha256 and stores it

A chunk that gets no answer (a dropped connection, a timeout, a server error) is not sent blindly again: the client
asks the server for its offset and goes on from there, up to `retries` times in a row without progress. The session
id is remembered in a file beside the config (config.uploads_path) until the submission is made, so running the same
`submit` again after a crash continues that session instead of sending everything again."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from . import config
from .api import ClientError, Server, Unreachable, explain

CHUNK_BYTES = 8 * 1024**2  # at most; the server's chunk_max_bytes may be smaller
RETRIES = 5
PAUSE = 1.0  # seconds before the first retry; doubled each time


class SessionGone(Exception):
    """The server no longer has the session (expired, failed, deleted): start a new one."""


@dataclass(frozen=True)
class LocalFile:
    path: Path
    size: int
    sha256: str

    @classmethod
    def read(cls, path: Path) -> LocalFile:
        digest, size = hashlib.sha256(), 0
        with path.open("rb") as handle:
            while piece := handle.read(1 << 20):
                digest.update(piece)
                size += len(piece)
        return cls(path=path, size=size, sha256=digest.hexdigest())

    def chunk(self, offset: int, length: int) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)


@dataclass(frozen=True)
class SentFile:
    """A finished upload: the session id a submission names, and its entry among the pending uploads."""

    session_id: str
    key: str


class PendingUploads:
    """Session ids of unfinished uploads, keyed by server, kind and the file's digest and size (a changed file is a
    new upload), in a file only its owner may read."""

    def __init__(self, path: Path):
        self.path = path

    def _all(self) -> dict:
        try:
            stored = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return stored if isinstance(stored, dict) else {}

    @staticmethod
    def key(server: Server, kind: str, local: LocalFile) -> str:
        return f"{server.url} {kind} {local.sha256} {local.size}"

    def get(self, key: str) -> str | None:
        found = self._all().get(key)
        return found if isinstance(found, str) else None

    def put(self, key: str, session_id: str) -> None:
        config.write_private(self.path, {**self._all(), key: session_id})

    def drop(self, key: str) -> None:
        remaining = self._all()
        if remaining.pop(key, None) is not None:
            config.write_private(self.path, remaining)


def _say(message: str, *, quiet: bool) -> None:
    if not quiet:
        print(message, file=sys.stderr)


def _existing_session(server: Server, session_id: str | None) -> dict | None:
    """The remembered session when the server still has it open or complete; None when it must start afresh."""
    if not session_id:
        return None
    response = server.send("GET", f"/api/uploads/{session_id}/")
    if response.status_code != 200:
        return None
    session = response.json()
    return session if session.get("status") in ("open", "complete") else None


def _new_session(server: Server, *, kind: str, local: LocalFile) -> dict:
    return server.request("POST", "/api/uploads/", ok=(201,), json={
        "kind": kind, "size": local.size, "sha256": local.sha256, "filename": local.path.name,
    }).json()


def _offset_of(server: Server, session_id: str) -> int:
    """Where the server's copy ends (HEAD, the Upload-Offset header)."""
    response = server.send("HEAD", f"/api/uploads/{session_id}/")
    if response.status_code in (404, 410):
        raise SessionGone
    if response.status_code != 200 or not response.headers.get("Upload-Offset", "").isdigit():
        raise Unreachable(f"The server did not say how much of the upload it has (HTTP {response.status_code}).")
    return int(response.headers["Upload-Offset"])


def _refusal(response) -> tuple[str, int | None]:
    try:
        body = response.json()
    except ValueError:
        return "", None
    offset = body.get("upload_offset") if isinstance(body, dict) else None
    return (body.get("code", "") if isinstance(body, dict) else ""), (offset if isinstance(offset, int) else None)


def _step(server: Server, session: dict, local: LocalFile, offset: int, chunk_bytes: int) -> tuple[int, dict | None]:
    """Send the next chunk (or finalise once every byte is there): the server's offset after it, and the complete
    session when finalised. Unreachable when the answer did not come back or was a server error (worth retrying)."""
    session_id = session["id"]
    if offset >= local.size:
        response = server.send("POST", f"/api/uploads/{session_id}/finalise/")
    else:
        data = local.chunk(offset, min(chunk_bytes, local.size - offset))
        response = server.send(
            "PUT", f"/api/uploads/{session_id}/", params={"offset": offset}, data=data,
            headers={"Upload-Chunk-SHA256": hashlib.sha256(data).hexdigest(),
                     "Content-Type": "application/octet-stream"},
        )
    if response.status_code == 200:
        answer = response.json()
        return int(answer["offset"]), answer if answer.get("status") == "complete" else None
    if response.status_code >= 500:
        raise Unreachable(f"The server failed (HTTP {response.status_code}).")
    code, server_offset = _refusal(response)
    if code in ("expired", "failed") or response.status_code in (404, 410):
        raise SessionGone
    if code == "sha256_mismatch":
        raise ClientError(f"The server's copy of {local.path.name} does not match the file (did it change while it "
                          "was being sent?); run the command again to send it afresh.")
    if code in ("busy", "chunk_checksum", "incomplete_chunk"):  # another writer still at it; bytes hurt on the way
        raise Unreachable(explain(response))
    if code in ("offset_mismatch", "incomplete", "complete") and server_offset is not None:
        return server_offset, None  # go on from where the server is (a retried chunk it had already counted)
    raise ClientError(f"Upload of {local.path.name}: {explain(response)}")


def send_file(server: Server, path: Path, *, kind: str, quiet: bool = False, retries: int = RETRIES,
              pause: float = PAUSE) -> SentFile:
    """Upload `path` as a `kind` session and finalise it; its `session_id` goes as `upload` in a submission. Call
    `forget` once the submission is made."""
    local = LocalFile.read(path)
    pending = PendingUploads(config.uploads_path())
    key = pending.key(server, kind, local)
    for _ in range(2):  # a session the server dropped on the way is started again, once
        session = _existing_session(server, pending.get(key))
        if session is None:
            session = _new_session(server, kind=kind, local=local)
        elif session["status"] == "open":
            _say(f"Resuming upload {session['id']} at byte {session['offset']} of {local.size}.", quiet=quiet)
        pending.put(key, session["id"])
        try:
            return SentFile(_send_session(server, session, local, quiet=quiet, retries=retries, pause=pause), key)
        except SessionGone:
            pending.drop(key)
            _say("The server dropped the unfinished upload; starting it again.", quiet=quiet)
    raise ClientError(f"The server keeps dropping the upload of {path.name}; try again later.", exit_code=2)


def forget(sent: SentFile) -> None:
    """The upload was used: a later `submit` of the same file is a new upload (the server keeps one copy)."""
    PendingUploads(config.uploads_path()).drop(sent.key)


def _send_session(server: Server, session: dict, local: LocalFile, *, quiet: bool, retries: int, pause: float) -> str:
    if session["status"] == "complete":
        return session["id"]
    chunk_bytes = max(1, min(CHUNK_BYTES, int(session.get("chunk_max_bytes") or CHUNK_BYTES)))
    offset, failures = int(session["offset"]), 0
    with tqdm(total=local.size, initial=offset, unit="B", unit_scale=True, desc=local.path.name,
              disable=quiet) as bar:
        while True:
            try:
                new_offset, complete = _step(server, session, local, offset, chunk_bytes)
            except Unreachable as problem:
                failures += 1
                if failures > retries:
                    raise ClientError(
                        f"The upload of {local.path.name} broke off at byte {offset} of {local.size} ({problem}); "
                        "run the same command again to resume it.", exit_code=2,
                    ) from None
                bar.write(f"Connection trouble ({problem}); retry {failures} of {retries}.", file=sys.stderr)
                time.sleep(pause * 2 ** (failures - 1))
                try:
                    new_offset, complete = _offset_of(server, session["id"]), None
                except Unreachable:
                    continue
            if complete is not None:
                bar.update(local.size - bar.n)
                return complete["id"]
            if new_offset > offset:
                failures = 0
            bar.update(new_offset - bar.n)
            offset = new_offset
