"""A real Celery worker subprocess for tests, started through worker_entry.py so test hooks (hooks.py) can be put
into it: `Worker(env=..., log=..., queues=[...], pause={"module:function": path})`. start() waits for "ready.",
kill() is a SIGKILL of its whole process group (no warm shutdown: what a crash or the OOM killer does), stop() a
warm shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from . import hooks

REPO = Path(__file__).resolve().parents[2]
ENTRY = Path(__file__).with_name("worker_entry.py")


def python_path() -> str:
    return os.pathsep.join([str(REPO / "platform"), str(REPO)])


class Worker:
    def __init__(self, *, env: dict, log: Path, queues=("scoring",), pool: str = "solo", concurrency: int = 1,
                 name: str | None = None, pause: dict[str, Path] | None = None):
        self.log, self.queues, self.pool, self.concurrency, self.name = log, list(queues), pool, concurrency, name
        self.pause = dict(pause or {})
        self.env = {**env, hooks.ENV: ";".join(f"{target}={file}" for target, file in self.pause.items())}
        self.process: subprocess.Popen | None = None

    @property
    def pause_file(self) -> Path:
        """The pause file of the only pause point (the common case)."""
        (file,) = self.pause.values()
        return Path(file)

    def reached(self, file: Path | None = None) -> bool:
        """Whether a task has entered the pause point of `file` (default: the only one)."""
        return Path(f"{file or self.pause_file}.reached").exists()

    def start(self, *, timeout: float = 90) -> None:
        for file in self.pause.values():
            Path(f"{file}.reached").unlink(missing_ok=True)
        handle = self.log.open("ab")
        argv = [sys.executable, str(ENTRY), "worker", f"--pool={self.pool}", "-Q", ",".join(self.queues),
                "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO"]
        if self.pool != "solo":
            argv += ["--concurrency", str(self.concurrency)]
        if self.name:
            argv += ["-n", self.name]
        offset = self.log.stat().st_size
        self.process = subprocess.Popen(argv, cwd=REPO, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "ready." in self.log.read_text(errors="replace")[offset:]:
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited: {self.tail()}")
            time.sleep(0.2)
        raise RuntimeError(f"celery worker did not start: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:]

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker's whole process group (no warm shutdown, no message restored by the worker)."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
