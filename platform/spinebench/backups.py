"""Backups of a SpineBench site: a consistent database dump plus every stored file (uploads under MEDIA_ROOT, dataset
folders under DATASETS_ROOT) with a sha256 manifest; restore of such a backup; and a storage check that reports
stored files whose checksum changed since the manifest was written.

A backup folder holds:

    manifest.json      {"format": 1, "created", "database": {"engine", "file", "sha256"}, "files": {relative path:
                        {"size", "sha256"}}} — paths are "media/..." and "datasets/..."
    database.dump      PostgreSQL: `pg_dump --format=custom` (one consistent snapshot);
    database.sqlite3   SQLite: the online backup API (a consistent copy while the site runs)
    media/, datasets/  copies of the two storage roots

The database is dumped first, then the files: an upload always reaches disk before its row commits, so every file
the dump refers to is already there when it is copied. Restore checks every checksum before it touches anything,
then replaces the database and both roots. With an object-storage backend the files live in the bucket: rely on the
bucket's versioning for them; the manifest still lets `verify-storage` find changed objects.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.utils import timezone

FORMAT = 1
MANIFEST = "manifest.json"
ROOTS = ("media", "datasets")
_CHUNK = 1024 * 1024


class BackupError(RuntimeError):
    """A backup or restore cannot proceed; the message says which file and why."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _roots() -> dict[str, Path]:
    return {"media": Path(settings.MEDIA_ROOT), "datasets": Path(settings.DATASETS_ROOT)}


def storage_checksums() -> dict[str, dict]:
    """{"media/<path>" | "datasets/<path>": {"size", "sha256"}} of every regular file under the storage roots.
    Links are not followed (a dataset view may link to another folder; its target is listed where it lives)."""
    files = {}
    for name, root in _roots().items():
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                files[f"{name}/{path.relative_to(root).as_posix()}"] = {
                    "size": path.stat().st_size, "sha256": sha256_of(path)}
    return files


# ----------------------------------------------------------------------------------------------------- database
def _database() -> dict:
    return connections["default"].settings_dict


def _engine() -> str:
    engine = _database()["ENGINE"]
    if engine.endswith("postgresql"):
        return "postgresql"
    if engine.endswith("sqlite3"):
        return "sqlite"
    raise BackupError(f"database engine {engine} is not supported by spinebench backup (PostgreSQL or SQLite)")


def _pg_environment() -> tuple[list[str], dict]:
    database = _database()
    arguments = ["--dbname", database["NAME"], "--no-owner"]
    for option, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if database.get(key):
            arguments += [option, str(database[key])]
    environment = {**os.environ}
    if database.get("PASSWORD"):
        environment["PGPASSWORD"] = str(database["PASSWORD"])
    return arguments, environment


def _run(command: list[str], environment: dict) -> None:
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")


def _dump_database(folder: Path) -> Path:
    if _engine() == "postgresql":
        out = folder / "database.dump"
        arguments, environment = _pg_environment()
        _run(["pg_dump", "--format=custom", "--file", str(out), *arguments], environment)
        return out
    out = folder / "database.sqlite3"
    source = sqlite3.connect(str(_database()["NAME"]))
    target = sqlite3.connect(str(out))
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    return out


def _restore_database(dump: Path) -> None:
    connections.close_all()
    if _engine() == "postgresql":
        arguments, environment = _pg_environment()
        _run(["pg_restore", "--clean", "--if-exists", "--single-transaction", *arguments, str(dump)], environment)
        return
    target = Path(_database()["NAME"])
    staged = target.with_name(target.name + ".restoring")
    source = sqlite3.connect(str(dump))
    destination = sqlite3.connect(str(staged))
    try:
        source.backup(destination)
    finally:
        destination.close()
        source.close()
    for suffix in ("-wal", "-shm"):
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    staged.replace(target)


# -------------------------------------------------------------------------------------------- backup and restore
def create_backup(out_dir: Path, *, progress=None) -> Path:
    """Write a new backup folder under `out_dir` (named by the UTC time) and return it."""
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    folder = Path(out_dir) / f"spinebench-backup-{stamp}"
    if folder.exists():
        raise BackupError(f"{folder} exists already")
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    dump = _dump_database(partial)
    files = {}
    for name, root in _roots().items():
        copied = partial / name
        copied.mkdir()
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.is_symlink():
                continue
            relative = path.relative_to(root)
            destination = copied / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            files[f"{name}/{relative.as_posix()}"] = {"size": destination.stat().st_size,
                                                      "sha256": sha256_of(destination)}
            if progress:
                progress(f"{name}/{relative.as_posix()}")
    manifest = {
        "format": FORMAT,
        "created": timezone.now().isoformat(),
        "database": {"engine": _engine(), "file": dump.name, "sha256": sha256_of(dump)},
        "files": files,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    partial.rename(folder)  # a backup folder without ".partial" is always complete
    return folder


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path}: no manifest (not a SpineBench backup folder, or an unfinished one)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BackupError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: manifest format {FORMAT} expected")
    return manifest


def verify_backup(folder: Path) -> list[str]:
    """Problems with a backup folder's files against its own manifest (empty: intact)."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    problems = []
    database = manifest["database"]
    dump = folder / database["file"]
    if not dump.is_file():
        problems.append(f"{database['file']}: missing")
    elif sha256_of(dump) != database["sha256"]:
        problems.append(f"{database['file']}: checksum differs from the manifest")
    for relative, expected in manifest["files"].items():
        path = folder / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_of(path) != expected["sha256"]:
            problems.append(f"{relative}: checksum differs from the manifest")
    return problems


def restore_backup(folder: Path) -> dict:
    """Replace the database and both storage roots with the backup's, after checking every checksum. Returns
    counts of what was restored."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest["database"]["engine"] != _engine():
        raise BackupError(f"{folder}: a {manifest['database']['engine']} backup cannot be restored into {_engine()}")
    problems = verify_backup(folder)
    if problems:
        raise BackupError(f"{folder}: backup is damaged, nothing was restored: " + "; ".join(problems[:20]))
    _restore_database(folder / manifest["database"]["file"])
    for name, root in _roots().items():
        staged = Path(tempfile.mkdtemp(prefix=f".restore-{name}-", dir=root.parent if root.parent.is_dir() else None))
        shutil.copytree(folder / name, staged, dirs_exist_ok=True)
        if root.exists():
            old = root.with_name(root.name + ".before-restore")
            shutil.rmtree(old, ignore_errors=True)
            root.rename(old)
            staged.rename(root)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staged.rename(root)
    return {"files": len(manifest["files"]), "database": manifest["database"]["file"]}


# ---------------------------------------------------------------------------------------------- storage check
@dataclass
class StorageReport:
    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not (self.changed or self.missing)


def default_storage_manifest() -> Path:
    return Path(settings.VAR_DIR) / "storage-manifest.json"


def write_storage_manifest(path: Path | None = None) -> Path:
    path = Path(path or default_storage_manifest())
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".tmp")
    staged.write_text(json.dumps({"format": FORMAT, "created": timezone.now().isoformat(),
                                  "files": storage_checksums()}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    staged.replace(path)
    return path


def verify_storage(manifest_path: Path | None = None) -> StorageReport:
    """Compare the stored files with a manifest (a backup's, or the one `write_storage_manifest` keeps): files whose
    checksum changed, files that vanished, and files added since (new uploads: not a problem)."""
    manifest_path = Path(manifest_path or default_storage_manifest())
    if manifest_path.is_dir():
        manifest_path = manifest_path / MANIFEST
    if not manifest_path.is_file():
        raise BackupError(f"{manifest_path}: no storage manifest; write one with `spinebench verify-storage --update`")
    try:
        recorded = json.loads(manifest_path.read_text(encoding="utf-8"))["files"]
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise BackupError(f"{manifest_path}: not a storage manifest ({error})") from None
    current = storage_checksums()
    report = StorageReport()
    for relative, expected in recorded.items():
        if relative not in current:
            report.missing.append(relative)
        elif current[relative]["sha256"] != expected["sha256"]:
            report.changed.append(relative)
    report.added = sorted(set(current) - set(recorded))
    return report
