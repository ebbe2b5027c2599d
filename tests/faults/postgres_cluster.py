"""A throwaway PostgreSQL cluster owned by one test: initdb into a fresh folder, served on a free 127.0.0.1 port with
its socket in that folder, so a fault test can restart or stop it without touching the machine's own cluster (5432).
Debian's server binaries (/usr/lib/postgresql/<version>/bin); as root the server runs as the `postgres` OS user,
since PostgreSQL refuses to run as root."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.harness.embedded_site import free_port

BIN_ROOT = Path("/usr/lib/postgresql")


def server_bin() -> Path | None:
    """The newest installed server's bin folder, or None when no PostgreSQL server is installed."""
    versions = sorted(
        (path for path in BIN_ROOT.glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    return versions[-1] if versions else None


def available() -> bool:
    if server_bin() is None or not (server_bin() / "psql").exists():
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return shutil.which("runuser") is not None


class Cluster:
    def __init__(self):
        self.bin = server_bin()
        # Not under pytest's tmp_path: its folders are 0700 root-owned, which the postgres user cannot enter.
        self.root = Path(tempfile.mkdtemp(prefix="spinebench-faults-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        result = subprocess.run([*prefix, *argv], capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}\n{log}")
        return result

    def _pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", *args)

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"
        )
        self._pg_ctl("start")

    def restart(self) -> None:
        """`pg_ctl restart -m fast`: every session is terminated and its open transaction rolled back."""
        self._pg_ctl("-m", "fast", "restart")

    def create_database(self, name: str) -> None:
        self._run(
            str(self.bin / "psql"),
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            f'CREATE DATABASE "{name}"',
        )

    def destroy(self) -> None:
        if (self.data / "postmaster.pid").exists():
            try:
                self._pg_ctl("-m", "immediate", "stop")
            except RuntimeError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)
